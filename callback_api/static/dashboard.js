/* Dashboard: active actions on the map, centralist presence, live call feed (server-sent events). */
"use strict";
(function () {
  var mapElement = document.getElementById("map");
  var map = BurgernetMap.create(mapElement);
  var layer = L.featureGroup().addTo(map);
  var list = document.getElementById("action-list");

  function loadActions() {
    fetch(mapElement.dataset.actions, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        layer.clearLayers();
        list.textContent = "";
        data.features.forEach(function (feature) {
          var href = mapElement.dataset.detail + "/" + feature.properties.id;
          var drawn = BurgernetMap.featureLayer(feature);
          if (drawn) { drawn.bindPopup(document.createTextNode(feature.properties.title)); layer.addLayer(drawn); }
          var item = document.createElement("li");
          var link = document.createElement("a");
          link.href = href;
          link.textContent = "#" + feature.properties.id + " " + feature.properties.title + " (" + feature.properties.type + ")";
          item.appendChild(link);
          list.appendChild(item);
        });
      });
  }

  var presence = document.getElementById("presence");
  var labels = JSON.parse(presence.dataset.labels);
  function loadPresence() {
    fetch(presence.dataset.source, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (rows) {
        var body = presence.querySelector("tbody");
        body.textContent = "";
        rows.forEach(function (row) {
          var tr = document.createElement("tr");
          [row.region, row.name + " (" + row.endpoint + ")"].forEach(function (text) {
            var td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
          });
          var state = document.createElement("td");
          state.className = "presence-" + row.presence;
          state.textContent = (labels[row.presence] || row.presence) + (row.on_duty ? "" : " · " + labels.off);
          tr.appendChild(state);
          body.appendChild(tr);
        });
      });
  }

  var feed = document.getElementById("feed");
  function addFeed(text) {
    if (feed.firstElementChild && feed.firstElementChild.classList.contains("muted")) { feed.textContent = ""; }
    var item = document.createElement("li");
    item.textContent = new Date().toLocaleTimeString() + " — " + text;
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 100) { feed.removeChild(feed.lastChild); }
  }
  var source = new EventSource(feed.dataset.source);
  source.onmessage = function (e) { addFeed(e.data); };
  ["call_routed", "call_answered", "call_ended", "tip", "tip_left"].forEach(function (kind) {
    source.addEventListener(kind, function (e) {
      var event = JSON.parse(e.data);
      var parts = [kind.replace("_", " ")];
      if (event.action_id) { parts.push("#" + event.action_id); }
      if (event.centralist) { parts.push(event.centralist); }
      if (event.outcome) { parts.push(event.outcome); }
      addFeed(parts.join(" · "));
    });
  });
  source.addEventListener("presence", function () { loadPresence(); });
  source.addEventListener("actions_changed", function () { loadActions(); });

  loadActions();
  loadPresence();
  setInterval(loadPresence, 30000);
})();
