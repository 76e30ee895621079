/* Dashboard: active actions on the map, centralist presence, broadcast progress and the live
   call feed (server-sent events). */
"use strict";
(function () {
  var mapElement = document.getElementById("map");
  var map = BurgernetMap.create(mapElement);
  var layer = L.featureGroup().addTo(map);
  var list = document.getElementById("action-list");

  // Each active action's area on the map, by id: a call about it makes its outline pulse.
  var areas = {};
  var fitted = false;
  var unassigned = document.getElementById("unassigned-tips");
  var counterLabels = JSON.parse(list.dataset.labels || "{}");
  function counters(item, row) {
    var line = document.createElement("span");
    line.className = "counters";
    [["reached", row.reached], ["calls", row.calls], ["tips", row.tips]].forEach(function (pair, i) {
      if (i) { line.appendChild(document.createTextNode(" · ")); }
      var figure = document.createElement("b");
      figure.textContent = String(pair[1]);
      line.appendChild(figure);
      line.appendChild(document.createTextNode(" " + (counterLabels[pair[0]] || pair[0])));
    });
    item.appendChild(line);
  }
  function loadActions() {
    var overview = list.dataset.overview
      ? fetch(list.dataset.overview, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      : Promise.resolve({ actions: [], unassigned_tips: 0 });
    Promise.all([
      fetch(mapElement.dataset.actions, { credentials: "same-origin" }).then(function (r) { return r.json(); }),
      overview
    ]).then(function (results) {
        var data = results[0], byId = {};
        results[1].actions.forEach(function (row) { byId[row.id] = row; });
        layer.clearLayers();
        areas = {};
        list.textContent = "";
        data.features.forEach(function (feature) {
          var href = mapElement.dataset.detail + "/" + feature.properties.id;
          var drawn = BurgernetMap.featureLayer(feature);
          if (drawn) {
            drawn.bindPopup(document.createTextNode(feature.properties.title));
            layer.addLayer(drawn);
            areas[feature.properties.id] = drawn;
          }
          var item = document.createElement("li");
          var link = document.createElement("a");
          link.href = href;
          link.textContent = "#" + feature.properties.id + " " + feature.properties.title + " (" + feature.properties.type + ")";
          item.appendChild(link);
          if (byId[feature.properties.id]) { counters(item, byId[feature.properties.id]); }
          list.appendChild(item);
        });
        if (unassigned) {
          var count = results[1].unassigned_tips;
          unassigned.hidden = !count;
          unassigned.querySelector("a").textContent = (counterLabels.unassigned || "%s").replace("%s", String(count));
        }
        // The first time: the map shows every active action (the whole country without any).
        if (!fitted && layer.getLayers().length) { map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 12 }); fitted = true; }
      });
  }
  function pulse(actionId) {
    var drawn = areas[actionId];
    if (!drawn) { return; }
    drawn.eachLayer(function (shape) {
      var path = shape.getElement && shape.getElement();
      if (path) { path.classList.remove("calling"); void path.getBBox(); path.classList.add("calling"); }
    });
  }
  var countersTimer = null;
  function reloadCountersSoon() {
    if (countersTimer === null) { countersTimer = setTimeout(function () { countersTimer = null; loadActions(); }, 1000); }
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

  var broadcasts = document.getElementById("broadcasts");
  var noBroadcasts = document.getElementById("broadcasts-none");
  var broadcastLabels = JSON.parse(broadcasts.dataset.labels);
  var broadcastTimer = null;
  function percent(handled, total) { return total > 0 ? Math.min(100, Math.floor(handled * 100 / total)) : 0; }
  function showProgress(item, handled, total, status) {
    var bar = item.querySelector("progress");
    bar.max = total > 0 ? total : 1;
    bar.value = handled;
    bar.textContent = percent(handled, total) + " %";
    item.querySelector(".progress-text").textContent = broadcastLabels.progress.replace("{handled}", handled)
      .replace("{total}", total).replace("{percent}", percent(handled, total));
    var badge = item.querySelector(".badge");
    badge.className = "badge broadcast-" + status;
    badge.textContent = broadcastLabels[status] || status;
    item.dataset.status = status;
  }
  function broadcastItem(b) {
    var item = document.createElement("li");
    item.dataset.broadcastId = String(b.broadcast_id);
    var id = "dashboard-broadcast-" + b.broadcast_id;
    var title = document.createElement("p");
    var link = document.createElement("a");
    link.href = broadcasts.dataset.detail + "/" + b.action_id + "#broadcasts-title";
    link.id = id + "-title";
    link.textContent = "#" + b.action_id + " " + b.action_title + " · " + (broadcastLabels[b.kind] || b.kind);
    var badge = document.createElement("span");
    badge.className = "badge";
    title.appendChild(link);
    title.appendChild(document.createTextNode(" "));
    title.appendChild(badge);
    var bar = document.createElement("progress");
    bar.id = id + "-progress";
    bar.className = "broadcast-progress";
    bar.setAttribute("aria-labelledby", link.id);
    bar.setAttribute("aria-describedby", id + "-text");
    var text = document.createElement("span");
    text.id = id + "-text";
    text.className = "progress-text";
    item.appendChild(title);
    item.appendChild(bar);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(text);
    showProgress(item, b.handled, b.total, b.status);
    return item;
  }
  function loadBroadcasts() {
    broadcastTimer = null;
    fetch(broadcasts.dataset.source, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        broadcasts.textContent = "";
        data.broadcasts.forEach(function (b) { broadcasts.appendChild(broadcastItem(b)); });
        noBroadcasts.hidden = data.broadcasts.length > 0;
      });
  }
  function reloadBroadcastsSoon() {
    if (broadcastTimer === null) { broadcastTimer = setTimeout(loadBroadcasts, 500); }
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
      if (event.action_id) { pulse(event.action_id); reloadCountersSoon(); }
    });
  });
  source.addEventListener("presence", function () { loadPresence(); });
  source.addEventListener("actions_changed", function () { loadActions(); reloadBroadcastsSoon(); });
  // Events published while the stream was down are not replayed: load the list again.
  source.addEventListener("open", reloadBroadcastsSoon);
  source.addEventListener("broadcast", function (e) {
    var event = JSON.parse(e.data);
    var item = broadcasts.querySelector('[data-broadcast-id="' + Number(event.broadcast_id) + '"]');
    if (!item) { reloadBroadcastsSoon(); return; }
    var handled = Number(event.handled), total = Number(event.total);
    // A finished bar stays at 100 % until the list is next loaded; then it leaves the list.
    showProgress(item, handled, total, handled >= total ? "done" : "running");
  });

  loadActions();
  loadPresence();
  loadBroadcasts();
  setInterval(loadPresence, 30000);
})();
