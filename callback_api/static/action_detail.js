"use strict";
(function () {
  var element = document.getElementById("map");
  var map = BurgernetMap.create(element);
  fetch(element.dataset.area, { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (feature) {
      var drawn = BurgernetMap.featureLayer(feature);
      if (drawn) { drawn.addTo(map); map.fitBounds(drawn.getBounds(), { maxZoom: 13 }); }
    });
  var output = document.getElementById("recipients");
  fetch(output.dataset.source, { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (data) { output.textContent = String(data.recipients); });
})();

/* Broadcasts: the bars move with the live feed's "broadcast" events; the per-channel counts and
   milestone times are fetched again (at most every REFRESH_MS) as the server renders them. */
(function () {
  var container = document.getElementById("broadcasts");
  if (!container || container.dataset.live !== "yes" || !window.EventSource) { return; }
  var announce = document.getElementById("broadcasts-announce");
  var REFRESH_MS = 2000;
  var timer = null;
  var lastRefresh = 0;

  function percent(handled, total) { return total > 0 ? Math.min(100, Math.floor(handled * 100 / total)) : 0; }

  function moveBar(article, handled, total) {
    var bar = article.querySelector("progress");
    var text = article.querySelector(".progress-text");
    if (!bar || !text) { return; }
    bar.max = total > 0 ? total : 1;
    bar.value = handled;
    bar.textContent = percent(handled, total) + " %";
    text.textContent = text.dataset.template.replace("{handled}", handled).replace("{total}", total)
      .replace("{percent}", percent(handled, total));
  }

  function statuses() {
    var found = {};
    container.querySelectorAll("[data-broadcast-id]").forEach(function (article) {
      found[article.dataset.broadcastId] = article.dataset.status;
    });
    return found;
  }

  function refresh() {
    timer = null;
    lastRefresh = Date.now();
    var before = statuses();
    fetch(container.dataset.source, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) {
      container.innerHTML = html;  // rendered and escaped by the server (actions/_broadcasts.html)
      container.querySelectorAll("[data-broadcast-id]").forEach(function (article) {
        var was = before[article.dataset.broadcastId];
        if (was && was !== article.dataset.status) {
          var badge = article.querySelector(".badge");
          announce.textContent = article.dataset.label + ": " + (badge ? badge.textContent : article.dataset.status);
        }
      });
    }).catch(function () { /* the next event tries again */ });
  }

  function scheduleRefresh(soon) {
    if (timer !== null) { return; }
    var wait = soon ? 0 : Math.max(0, REFRESH_MS - (Date.now() - lastRefresh));
    timer = setTimeout(refresh, wait);
  }

  var source = new EventSource(container.dataset.events);
  source.addEventListener("broadcast", function (e) {
    var event = JSON.parse(e.data);
    if (String(event.action_id) !== container.dataset.action) { return; }
    var article = container.querySelector('[data-broadcast-id="' + Number(event.broadcast_id) + '"]');
    if (article) { moveBar(article, Number(event.handled), Number(event.total)); }
    // A broadcast not on the page yet (an update sent from elsewhere) or one just finished: now.
    scheduleRefresh(!article || Number(event.handled) >= Number(event.total));
  });
  // Events published before the stream was (re)opened are not replayed: catch up once.
  source.addEventListener("open", function () { scheduleRefresh(true); });
})();
