"use strict";
/* The action page: its area and sightings on the map, and, over the one live stream
   (live_events.js), its calls, tips, sightings and broadcasts as they happen. Events are nudges:
   what changed is fetched again from the server, which applies need-to-know and renders it. */
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

  var page = document.getElementById("action-page");
  var actionId = page ? String(page.dataset.action) : "";
  var live = page && page.dataset.live === "yes" && window.BurgernetLive;
  var timers = {};

  function later(key, work) {  // several events in a burst: one fetch
    if (timers[key]) { return; }
    timers[key] = setTimeout(function () { timers[key] = null; work(); }, 100);
  }

  function replace(containerId) {
    var container = document.getElementById(containerId);
    if (!container) { return; }
    fetch(container.dataset.source, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) { container.innerHTML = html; })  // rendered and escaped by the server
      .catch(function () { /* the next event tries again */ });
  }

  /* Sightings: markers coloured by reliability, the list beside them. */
  var section = document.getElementById("sightings");
  var COLOURS = { confirmed: "#b00020", probable: "#e65100", possible: "#1565c0", doubtful: "#757575" };
  var markers = L.layerGroup().addTo(map);

  function popup(s) {
    var box = document.createElement("div");
    var when = document.createElement("strong");
    when.textContent = new Date(s.seen_at).toLocaleString("nl-NL", { timeZone: "Europe/Amsterdam" });
    box.appendChild(when);
    box.appendChild(document.createElement("br"));
    box.appendChild(document.createTextNode(s.reliability + (s.direction ? " · " + s.direction : "")));
    if (s.description) {
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode(s.description));
    }
    return box;
  }

  var fitted = false;

  function drawSightings() {
    if (!section) { return; }
    fetch(section.dataset.markers, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    })
      .then(function (data) {
        markers.clearLayers();
        if (!fitted && data.sightings.length) {  // once: where it was seen matters more than the area
          fitted = true;
          map.fitBounds(L.latLngBounds(data.sightings.map(function (s) { return [s.lat, s.lon]; })),
                        { padding: [80, 80], maxZoom: 14 });
        }
        data.sightings.forEach(function (s) {
          L.circleMarker([s.lat, s.lon], {
            radius: 8, color: COLOURS[s.reliability] || "#333", weight: 2, fillOpacity: 0.6,
            className: "sighting-marker sighting-" + s.id
          }).bindPopup(popup(s)).addTo(markers);
        });
      }).catch(function () { /* the next event tries again */ });
  }

  function refreshSightings() {
    if (!section) { return; }
    drawSightings();
    fetch(section.dataset.list, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) { document.getElementById("sightings-body").innerHTML = html; })  // server-rendered
      .catch(function () { /* the next event tries again */ });
  }

  if (section) {
    drawSightings();
    BurgernetSightingForm.attach(map, function () {
      document.getElementById("sightings-announce").textContent = section.dataset.recorded || "Sighting recorded.";
      refreshSightings();
    });
  }

  if (!live) { return; }
  function ours(event) { return String(event.action_id) === actionId; }
  BurgernetLive.on("sighting_added", function (event) {
    if (ours(event)) { later("sightings", refreshSightings); }
  });
  ["call_routed", "call_ended"].forEach(function (type) {
    BurgernetLive.on(type, function (event) { if (ours(event)) { later("calls", function () { replace("calls-body"); }); } });
  });
  BurgernetLive.on("call_answered", function (event) {  // carries the call, not the action
    if (document.querySelector("#calls-body") && (ours(event) || event.action_id === undefined)) {
      later("calls", function () { replace("calls-body"); });
    }
  });
  BurgernetLive.on("tip", function (event) {
    if (ours(event)) { later("tips", function () { replace("tips-body"); }); }
  });
  // Events published while the stream was (re)connecting are not replayed: catch up.
  BurgernetLive.onOpen(function () {
    later("calls", function () { replace("calls-body"); });
    later("tips", function () { replace("tips-body"); });
    later("sightings", refreshSightings);
  });
})();

/* Broadcasts: the bars move with the live stream's "broadcast" events; the per-channel counts and
   milestone times are fetched again (at most every REFRESH_MS) as the server renders them. */
(function () {
  var container = document.getElementById("broadcasts");
  if (!container || container.dataset.live !== "yes" || !window.BurgernetLive) { return; }
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

  BurgernetLive.on("broadcast", function (event) {
    if (String(event.action_id) !== container.dataset.action) { return; }
    var article = container.querySelector('[data-broadcast-id="' + Number(event.broadcast_id) + '"]');
    if (article) { moveBar(article, Number(event.handled), Number(event.total)); }
    // A broadcast not on the page yet (an update sent from elsewhere) or one just finished: now.
    scheduleRefresh(!article || Number(event.handled) >= Number(event.total));
  });
  // Events published before the stream was (re)opened are not replayed: catch up once.
  BurgernetLive.onOpen(function () { scheduleRefresh(true); });
})();
