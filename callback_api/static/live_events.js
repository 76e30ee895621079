"use strict";
/* The panel's one live stream (callback_api/live_events.py): a single EventSource per page, shared
   by every script that listens (the action page, the worklist, the call card).

     BurgernetLive.on("sighting_added", function (event) { ... });   // event: the parsed JSON
     BurgernetLive.onOpen(function () { ... });  // (re)connected: re-read what may have been missed

   The stream opens on the first on()/onOpen(). Its URL is <body data-live-events>, or
   /live/events. The server ends every stream after a few minutes; the browser reconnects by
   itself after the stream's "retry:" and every onOpen handler runs again, because events published
   while it was away are not replayed. */
window.BurgernetLive = (function () {
  var source = null;
  var handlers = {};
  var openHandlers = [];

  function url() {
    return (document.body && document.body.dataset.liveEvents) || "/live/events";
  }

  function dispatch(type, e) {
    var event;
    try { event = JSON.parse(e.data); } catch (err) { return; }
    (handlers[type] || []).forEach(function (handler) {
      try { handler(event); } catch (err) { if (window.console) { console.error(err); } }
    });
  }

  function ensure() {
    if (source || !window.EventSource) { return; }
    source = new EventSource(url());
    Object.keys(handlers).forEach(listen);
    // <html data-live="open|reconnecting">: for the page's styles, and for tests to know the
    // stream is subscribed (no event published after this is lost).
    source.addEventListener("open", function () {
      document.documentElement.dataset.live = "open";
      openHandlers.forEach(function (handler) { handler(); });
    });
    source.addEventListener("error", function () { document.documentElement.dataset.live = "reconnecting"; });
  }

  function listen(type) {
    source.addEventListener(type, function (e) { dispatch(type, e); });
  }

  return {
    on: function (type, handler) {
      var first = !handlers[type];
      handlers[type] = handlers[type] || [];
      handlers[type].push(handler);
      if (source && first) { listen(type); }
      ensure();
    },
    onOpen: function (handler) {
      openHandlers.push(handler);
      ensure();
    }
  };
})();
