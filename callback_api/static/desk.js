"use strict";
/* The call card (callback_api/desk/, burgernet/desk.py). A call_ringing event on the live stream
   (only ever sent to the user linked to the phone it rings) shows the card at once with what the
   event says; the details (photo, map, participant, alerts, earlier calls, sightings) follow from
   /desk/calls/<id>.json. desk_answered keeps it up ("in call"); desk_closed closes it into a line
   under "Earlier calls on this desk" that links to the call's record (the action's calls). */
(function () {
  var desk = document.getElementById("desk");
  if (!desk || !desk.dataset.endpoint || !window.BurgernetLive) { return; }
  var labels = JSON.parse(desk.dataset.labels || "{}");
  var cards = document.getElementById("cards");
  var records = document.getElementById("records");
  var template = document.getElementById("card-template");
  var open = {};  // call id -> {element, event, details}

  function text(element, value) { element.textContent = value == null ? "" : String(value); }
  function fill(format, values) {
    return format.replace(/%\((\w+)\)s/g, function (_m, key) { return values[key] == null ? "" : values[key]; });
  }
  function local(iso) {
    if (!iso) { return ""; }
    return new Date(iso).toLocaleString(document.documentElement.lang === "nl" ? "nl-NL" : "en-GB",
      { timeZone: "Europe/Amsterdam", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }
  function lines(element, items, empty) {
    element.textContent = "";
    if (!items.length) { text(element, empty); return; }
    var list = document.createElement("ul");
    list.className = "lines";
    items.forEach(function (item) {
      var line = document.createElement("li");
      text(line, item);
      list.appendChild(line);
    });
    element.appendChild(list);
  }
  function recordUrl(actionId) {
    return actionId ? desk.dataset.actionUrl.replace(/0$/, String(actionId)) + "#calls-title" : "";
  }

  function show(event) {
    if (open[event.call]) {
      // Announced twice (the routing decision and Asterisk's DialBegin): read the details again,
      // in case the first announcement knew less.
      details(event.call);
      return;
    }
    var element = template.content.firstElementChild.cloneNode(true);
    element.id = "call-" + event.call.replace(/[^\w-]/g, "_");
    element.dataset.call = event.call;
    text(element.querySelector(".state"), labels.ringing);
    text(element.querySelector(".title"), event.action_id ? "BN" + event.action_id + " " + (event.title || "") : labels.no_action);
    text(element.querySelector(".reason"), event.reason || "");
    text(element.querySelector(".caller"), event.caller_number || labels.withheld);
    text(element.querySelector(".participant"), event.known_participant ? "…" : labels.unknown);
    cards.prepend(element);
    open[event.call] = { element: element, event: event };
    details(event.call);
  }

  function details(call) {
    var url = desk.dataset.cardUrl.replace("CALL", encodeURIComponent(call));
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (card) { if (card && open[call]) { render(open[call].element, card); } });
  }

  function render(element, card) {
    element.dataset.loaded = "yes";
    if (card.action_id) { text(element.querySelector(".title"), "BN" + card.action_id + " " + card.title); }
    text(element.querySelector(".description"), card.description);
    if (card.caller_number) { text(element.querySelector(".caller"), card.caller_number); }
    var participant = labels.unknown;
    if (card.known_participant) {
      participant = fill(card.distance_km === 0 ? labels.known_inside : labels.known,
        { postcode: card.postcode || "?", km: card.distance_km == null ? "?" : card.distance_km });
    }
    text(element.querySelector(".participant"), participant);
    lines(element.querySelector(".alerted"), card.alerted.map(function (a) {
      return local(a.at) + " · " + a.channel + " (" + a.status + ")";
    }), labels.not_alerted);
    lines(element.querySelector(".earlier"), card.earlier_calls.map(function (c) {
      return local(c.started_at) + " · " + (c.outcome || "…") + (c.centralist ? " · " + c.centralist : "");
    }), labels.none);
    lines(element.querySelector(".sightings"), card.sightings.map(function (s) {
      return local(s.seen_at) + " · " + s.reliability + (s.direction ? " → " + s.direction : "") +
        (s.description ? " · " + s.description : "");
    }), labels.none);
    if (card.has_photo && card.action_id) {
      var photo = element.querySelector(".photo");
      photo.src = recordUrl(card.action_id).replace("#calls-title", "") + "/photo";
      photo.alt = labels.photo;
      photo.hidden = false;
    }
    var mapElement = element.querySelector(".card-map");
    mapElement.setAttribute("aria-label", labels.map);
    if (card.area && card.area.geometry && window.L) {
      mapElement.dataset.tiles = desk.dataset.tiles;
      var map = window.BurgernetMap.create(mapElement);
      var layer = window.BurgernetMap.featureLayer(card.area);
      if (layer) { layer.addTo(map); map.fitBounds(layer.getBounds(), { maxZoom: 14 }); }
      card.sightings.forEach(function (s) {
        if (s.lat === null || s.lon === null) { return; }  // from the app, without a place
        L.circleMarker([s.lat, s.lon], { radius: 5, color: "#0b5394" }).addTo(map);
      });
    } else {
      mapElement.hidden = true;
    }
  }

  function answered(event) {
    var card = open[event.call];
    if (!card) { return; }
    card.element.dataset.state = "answered";
    text(card.element.querySelector(".state"), labels.answered);
  }

  function closed(event) {
    var card = open[event.call];
    if (!card) { return; }
    // A phone that stopped ringing because another took the call, or the call ending: the card
    // goes; the answered card stays until the call itself ends.
    if (event.status !== "ended" && card.element.dataset.state === "answered") { return; }
    delete open[event.call];
    card.element.remove();
    var item = document.createElement("li");
    var link = document.createElement("a");
    var actionId = card.event.action_id;
    var title = actionId ? "BN" + actionId + " " + (card.event.title || "") : labels.no_action;
    text(link, local(new Date(card.event.at * 1000).toISOString()) + " · " + title + " · " +
      (event.status === "ended" ? labels.closed + (event.outcome ? " (" + event.outcome + ")" : "") : labels.missed));
    if (actionId) { link.href = recordUrl(actionId); } else { link.removeAttribute("href"); }
    link.className = "record";
    link.dataset.call = event.call;
    item.appendChild(link);
    records.prepend(item);
  }

  // (Re)connected: events sent while the stream was away are not replayed, so the calls on this
  // phone now are read again; a card whose call is no longer there closes into its record.
  function resync() {
    fetch(desk.dataset.currentUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var now = {};
        data.calls.forEach(function (event) {
          now[event.call] = true;
          if (!open[event.call]) { show(event); }
          if (event.state === "answered") { answered(event); }
        });
        Object.keys(open).forEach(function (call) {
          if (!now[call]) { closed({ call: call, status: "ended" }); }
        });
      });
  }

  window.BurgernetLive.onOpen(resync);
  window.BurgernetLive.on("call_ringing", show);
  window.BurgernetLive.on("desk_answered", answered);
  window.BurgernetLive.on("desk_closed", closed);
})();
