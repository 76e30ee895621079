/* New action: type → template, find the place (search box, map click), pick and order the team,
   preview every message per channel and language, then start. Everything works from the keyboard. */
"use strict";
(function () {
  var form = document.getElementById("action-form");
  var words = JSON.parse(form.dataset.words);
  var templates = JSON.parse(form.dataset.templates);
  var token = document.querySelector("meta[name=csrf-token]").content;
  var say = function (key, values) {
    var text = words[key] || key;
    Object.keys(values || {}).forEach(function (name) { text = text.replace(name, String(values[name])); });
    return text;
  };
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }
  function post(url, data) {
    return fetch(url, { method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": token } });
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // -- area kind ------------------------------------------------------------------------------
  var radios = form.querySelectorAll("input[name=area_kind]");
  function kind() { var c = form.querySelector("input[name=area_kind]:checked"); return c ? c.value : "circle"; }
  function showFields() {
    form.querySelectorAll("[data-area]").forEach(function (box) { box.hidden = box.dataset.area !== kind(); });
  }
  function setKind(value) { radios.forEach(function (r) { r.checked = r.value === value; }); showFields(); }
  radios.forEach(function (r) { r.addEventListener("change", function () { showFields(); changed(); }); });
  showFields();

  // -- map: draw, or click to set the centre ------------------------------------------------------
  var map = BurgernetMap.create(document.getElementById("draw-map"));
  map.scrollWheelZoom.enable();
  var drawn = new L.FeatureGroup().addTo(map);
  map.addControl(new L.Control.Draw({
    edit: { featureGroup: drawn },
    draw: { polyline: false, rectangle: false, marker: false, circlemarker: false, circle: true, polygon: true }
  }));
  var drawing = false;
  map.on(L.Draw.Event.DRAWSTART, function () { drawing = true; });
  map.on(L.Draw.Event.DRAWSTOP, function () { setTimeout(function () { drawing = false; }, 0); });
  map.on(L.Draw.Event.CREATED, function (e) { drawn.clearLayers(); drawn.addLayer(e.layer); fromLayer(e.layer); });
  map.on(L.Draw.Event.EDITED, function (e) { e.layers.eachLayer(fromLayer); });
  map.on("click", function (e) {
    if (drawing) { return; }
    setCentre(e.latlng.lng, e.latlng.lat);
    status.textContent = say("clicked", { RADIUS: radius() });
  });

  // From the keyboard: the arrow keys pan the map (Leaflet), Enter puts the centre in its middle.
  map.getContainer().addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target === map.getContainer()) {
      e.preventDefault();
      var middle = map.getCenter();
      setCentre(middle.lng, middle.lat);
      status.textContent = say("clicked", { RADIUS: radius() });
    }
  });
  function radius() { return parseInt(form.radius_m.value, 10) || (templates[form.action_type.value] || {}).radius_m || 3000; }
  function drawCircle() {
    var lon = parseFloat(form.lon.value), lat = parseFloat(form.lat.value);
    if (isNaN(lon) || isNaN(lat)) { return; }
    drawn.clearLayers();
    drawn.addLayer(L.circle([lat, lon], { radius: radius(), color: "#c40000", weight: 2, fillOpacity: 0.12 }));
  }
  function setCentre(lon, lat) {
    form.lon.value = lon.toFixed(5);
    form.lat.value = lat.toFixed(5);
    if (!form.radius_m.value) { form.radius_m.value = radius(); }
    setKind("circle");
    drawCircle();
    changed();
  }
  function fromLayer(layer) {
    if (layer instanceof L.Circle) {
      var c = layer.getLatLng();
      form.lon.value = c.lng.toFixed(5);
      form.lat.value = c.lat.toFixed(5);
      form.radius_m.value = Math.round(layer.getRadius());
      setKind("circle");
    } else {
      form.geojson.value = JSON.stringify(layer.toGeoJSON().geometry);
      setKind("polygon");
    }
    changed();
  }
  ["lon", "lat", "radius_m"].forEach(function (name) {
    form[name].addEventListener("change", function () { if (kind() === "circle") { drawCircle(); } });
  });

  // -- the type's template ----------------------------------------------------------------------
  var note = document.getElementById("template-note");
  var applied = templates[form.action_type.value] || null;
  function describe(t) {
    var channels = t.channels.map(function (c) { return words[c] || c; }).join(", ");
    return words.template + ": " + (t.radius_m >= 1000 ? t.radius_m / 1000 + " km" : t.radius_m + " m") +
      " · " + channels + " · " + t.urgency;
  }
  function applyTemplate() {
    var t = templates[form.action_type.value];
    if (!t) { return; }
    // Only what the operator has not changed since the last template is replaced.
    var untouched = function (field, previous) { return !form[field].value || (applied && form[field].value === String(previous)); };
    if (untouched("radius_m", applied && applied.radius_m)) { form.radius_m.value = t.radius_m; }
    if (untouched("title", applied && applied.title_block)) { form.title.value = t.title_block; }
    if (untouched("description", applied && applied.description_block)) { form.description.value = t.description_block; }
    // The channels and urgency likewise: the template's, unless the operator chose otherwise.
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=channels]"));
    var ticked = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }).join(",");
    if (!applied || ticked === applied.channels.join(",")) {
      boxes.forEach(function (b) { b.checked = t.channels.indexOf(b.value) >= 0; });
    }
    if (!applied || form.urgency.value === applied.urgency) { form.urgency.value = t.urgency; }
    applied = t;
    note.textContent = describe(t);
    if (kind() === "circle") { drawCircle(); }
  }
  form.action_type.addEventListener("change", function () { applyTemplate(); changed(); });
  applyTemplate();

  // -- find the place ---------------------------------------------------------------------------
  var search = document.getElementById("place-search");
  var list = document.getElementById("place-results");
  var status = document.getElementById("place-status");
  var hits = [], active = -1, lastQuery = "";
  function closeList() { list.hidden = true; search.setAttribute("aria-expanded", "false"); search.removeAttribute("aria-activedescendant"); active = -1; }
  function highlight(index) {
    active = index;
    list.querySelectorAll("[role=option]").forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (index >= 0) { search.setAttribute("aria-activedescendant", "place-" + index); }
  }
  function choose(hit) {
    closeList();
    search.value = hit.label;
    lastQuery = hit.label; // a search still waiting must not look the label up again
    map.setView([hit.lat, hit.lon], hit.zoom);
    if (hit.region && form.region.value !== hit.region) { form.region.value = hit.region; loadTeam(); }
    setCentre(hit.lon, hit.lat);
    if (drawn.getLayers().length) { map.fitBounds(drawn.getBounds(), { padding: [24, 24] }); }
    status.textContent = say("found", { PLACE: hit.label, RADIUS: radius() });
  }
  function showHits(query, found) {
    hits = found;
    list.innerHTML = "";
    found.forEach(function (hit, i) {
      var option = el("li", { role: "option", id: "place-" + i, "aria-selected": "false" }, hit.label);
      option.addEventListener("mousedown", function (e) { e.preventDefault(); choose(hit); });
      list.appendChild(option);
    });
    list.hidden = !found.length;
    search.setAttribute("aria-expanded", found.length ? "true" : "false");
    status.textContent = found.length ? say("results", { COUNT: found.length }) : say("none", { QUERY: query });
    highlight(found.length ? 0 : -1);
  }
  function lookUp() {
    var query = search.value.trim();
    if (query === lastQuery) { return Promise.resolve(); }
    lastQuery = query;
    if (query.length < 2) { closeList(); hits = []; return Promise.resolve(); }
    return fetch(form.dataset.places + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (data.query === search.value.trim().slice(0, 200)) { showHits(query, data.results); } });
  }
  search.addEventListener("input", debounce(lookUp, 150));
  search.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" && hits.length) { e.preventDefault(); list.hidden = false; highlight(Math.min(active + 1, hits.length - 1)); }
    else if (e.key === "ArrowUp" && hits.length) { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
    else if (e.key === "Escape") { closeList(); }
    else if (e.key === "Enter") {
      // Enter picks the highlighted place (the first by default), never submits the form.
      e.preventDefault();
      lookUp().then(function () { if (hits.length) { choose(hits[Math.max(active, 0)]); } });
    }
  });
  search.addEventListener("blur", function () { setTimeout(closeList, 150); });

  // -- the team ---------------------------------------------------------------------------------
  var picker = document.getElementById("team-picker");
  var warning = document.getElementById("team-warning");
  var teamStatus = document.getElementById("team-status");
  var members = [];
  function chosen() { return Array.prototype.filter.call(picker.children, function (li) { return li.querySelector("input").checked; }); }
  function syncTeam() {
    form.team.value = chosen().map(function (li) { return li.dataset.endpoint; }).join(", ");
    showReachable();
  }
  function showReachable() {
    var picked = chosen();
    var reachable = picked.filter(function (li) { return li.dataset.reachable === "true"; });
    warning.hidden = picked.length > 0 && reachable.length > 0;
    warning.textContent = picked.length ? words.nobody : words.no_team;
    if (!picked.length) { warning.hidden = false; }
  }
  function move(li, step) {
    var sibling = step < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!sibling) { return; }
    picker.insertBefore(li, step < 0 ? sibling : sibling.nextElementSibling);
    li.querySelector("input").focus();
    var position = Array.prototype.indexOf.call(picker.children, li) + 1;
    teamStatus.textContent = say("moved", { NAME: li.dataset.name, POSITION: position });
    syncTeam();
  }
  function row(member) {
    var li = el("li", { draggable: "true", "data-endpoint": member.endpoint, "data-name": member.name,
                        "data-reachable": String(member.reachable), class: "state-" + member.presence });
    var id = "member-" + member.endpoint;
    var box = el("input", { type: "checkbox", id: id, value: member.endpoint });
    var label = el("label", { for: id });
    label.appendChild(el("span", { class: "member-name" }, member.name + " (" + member.endpoint + ")"));
    label.appendChild(el("span", { class: "member-state presence-" + member.presence + (member.on_duty ? "" : " off-duty") }, member.state_label));
    var up = el("button", { type: "button", class: "icon", "aria-label": say("up", { NAME: member.name }) }, "↑");
    var down = el("button", { type: "button", class: "icon", "aria-label": say("down", { NAME: member.name }) }, "↓");
    up.addEventListener("click", function () { move(li, -1); });
    down.addEventListener("click", function () { move(li, 1); });
    box.addEventListener("change", function () {
      // The ticked rows stay on top, in ringing order: a new one rings last.
      picker.removeChild(li);
      var ticked = chosen();
      var after = ticked.length ? ticked[ticked.length - 1].nextElementSibling : picker.firstElementChild;
      picker.insertBefore(li, after);
      box.focus();
      syncTeam();
    });
    box.addEventListener("keydown", function (e) {
      if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) { e.preventDefault(); move(li, e.key === "ArrowUp" ? -1 : 1); }
    });
    li.addEventListener("dragstart", function (e) { e.dataTransfer.setData("text/plain", member.endpoint); li.classList.add("dragging"); });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); });
    li.addEventListener("dragover", function (e) { e.preventDefault(); });
    li.addEventListener("drop", function (e) {
      e.preventDefault();
      var dragged = picker.querySelector("[data-endpoint='" + e.dataTransfer.getData("text/plain") + "']");
      if (dragged && dragged !== li) { picker.insertBefore(dragged, li); syncTeam(); }
    });
    li.append(box, label, up, down);
    return li;
  }
  function renderTeam(keep) {
    picker.innerHTML = "";
    var order = keep.length ? keep : [];
    var byEndpoint = {};
    members.forEach(function (m) { byEndpoint[m.endpoint] = m; });
    var ordered = order.filter(function (e) { return byEndpoint[e]; }).map(function (e) { return byEndpoint[e]; })
      .concat(members.filter(function (m) { return order.indexOf(m.endpoint) < 0; }));
    ordered.forEach(function (m) {
      var li = row(m);
      li.querySelector("input").checked = order.indexOf(m.endpoint) >= 0;
      picker.appendChild(li);
    });
    showReachable();
  }
  function typedTeam() { return form.team.value.split(/[\s,;]+/).filter(Boolean); }
  function loadTeam() {
    return fetch(form.dataset.team + "?region=" + encodeURIComponent(form.region.value), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var first = !members.length && !form.team.value && form.dataset.own;
        members = data.members;
        // The operator's own endpoint comes first by default.
        renderTeam(first ? [form.dataset.own] : typedTeam());
        if (first) { syncTeam(); }
      });
  }
  form.region.addEventListener("change", function () { loadTeam(); changed(); });
  form.team.addEventListener("change", function () { renderTeam(typedTeam()); });
  loadTeam();
  // Live state: presence changes while the form is open.
  setInterval(function () {
    var keep = typedTeam();
    fetch(form.dataset.team + "?region=" + encodeURIComponent(form.region.value), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (picker.contains(document.activeElement)) { return; } // never move what is being handled
        members = data.members;
        renderTeam(keep);
      });
  }, 10000);

  // -- the recipient count (kept for the count button and for the inquiry-style output) ----------
  var output = document.getElementById("recipient-count");
  var countButton = document.getElementById("count-button");
  function count() {
    var data = new FormData(form);
    data.delete("photo");
    return post(countButton.dataset.url, data).then(function (r) { return r.json(); }).then(function (result) {
      output.textContent = result.error ? result.error : output.dataset.label.replace("COUNT", String(result.recipients));
    });
  }
  countButton.addEventListener("click", count);

  // -- preview ----------------------------------------------------------------------------------
  var preview = document.getElementById("preview");
  var previewStatus = document.getElementById("preview-status");
  var recipients = document.getElementById("preview-recipients");
  var overlap = document.getElementById("overlap");
  var startButton = document.getElementById("create-start");
  var generation = 0;
  function previewData() { var data = new FormData(form); data.delete("photo"); return data; }
  function showPreview(result) {
    preview.innerHTML = "";
    result.messages.forEach(function (m) {
      var card = el("section", { class: "message channel-" + m.channel, "aria-label": (words[m.channel] || m.channel) + " · " + words[m.language] });
      card.appendChild(el("h3", {}, (words[m.channel] || m.channel) + " · " + words[m.language]));
      if (m.subject) { var s = el("p", { class: "subject" }); s.appendChild(el("strong", {}, words.subject + ": ")); s.appendChild(document.createTextNode(m.subject)); card.appendChild(s); }
      card.appendChild(el("p", { class: "pre body", "data-channel": m.channel, "data-lang": m.language }, m.body));
      if (m.sms) {
        card.appendChild(el("p", { class: "muted sms-size" }, say("characters", { COUNT: m.sms.characters, SEGMENTS: m.sms.segments, ENCODING: m.sms.encoding })));
      }
      if (m.channel === "voice") {
        var play = el("button", { type: "button", class: "play" }, "▶ " + say("play", { LANG: words[m.language] }));
        play.addEventListener("click", function () { speak(m.language, card, play); });
        card.appendChild(play);
      }
      preview.appendChild(card);
    });
    var parts = Object.keys(result.recipients).filter(function (k) { return k !== "people"; })
      .map(function (k) { return (words[k] || k) + ": " + result.recipients[k]; });
    recipients.textContent = words.recipients + " — " + parts.join(" · ") + " · " + result.recipients.people + " " + words.people;
    showEta(result.eta);
    overlap.innerHTML = "";
    overlap.hidden = !result.overlaps.length;
    result.overlaps.forEach(function (o, i) {
      if (i === 0) { overlap.appendChild(document.createTextNode(words.overlap + ": ")); } else { overlap.appendChild(document.createTextNode(", ")); }
      overlap.appendChild(el("a", { href: form.dataset.places.replace(/places$/, String(o.action_id)) }, "#" + o.action_id + " " + o.title));
    });
    var unfinished = (form.title.value + form.description.value).indexOf("...") >= 0;
    previewStatus.textContent = unfinished ? words.unfinished : "";
  }
  // The expected time to 50/90/100 % handled, per channel and for everyone (burgernet.eta).
  var etaList = document.getElementById("preview-eta");
  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "–"; }
    var s = Math.round(seconds);
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  function etaLine(label, times) {
    return say("eta_line", { CHANNEL: label, T50: duration(times["50%"]), T90: duration(times["90%"]), T100: duration(times["100%"]) });
  }
  function showEta(eta) {
    etaList.innerHTML = "";
    etaList.hidden = !eta || !eta.recipients;
    if (etaList.hidden) { return; }
    etaList.setAttribute("aria-label", words.eta);
    eta.channels.forEach(function (c) {
      var text = etaLine(words[c.channel] || c.channel, c.seconds_to);
      if (c.held_until) { text += " (" + say("eta_held", { TIME: new Date(c.held_until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }) + ")"; }
      etaList.appendChild(el("li", { "data-channel": c.channel, title: c.basis }, text));
    });
    if (eta.channels.length > 1) { etaList.appendChild(el("li", { "data-channel": "all" }, etaLine(words.eta_all, eta.seconds_to))); }
  }
  function refreshPreview() {
    var mine = ++generation;
    startButton.disabled = true;
    return post(form.dataset.preview, previewData()).then(function (r) { return r.json(); }).then(function (result) {
      if (mine !== generation) { return; }
      if (result.error) {
        preview.innerHTML = "";
        recipients.textContent = "";
        showEta(null);
        previewStatus.textContent = say("preview_error", { WHY: result.error });
        return;
      }
      showPreview(result);
      // Starting sends what was previewed: only with a preview of the current form.
      startButton.disabled = false;
    });
  }
  function speak(language, card, button) {
    var data = previewData();
    data.set("lang", language);
    button.disabled = true;
    post(form.dataset.voice, data).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.blob();
    }).then(function (blob) {
      var audio = card.querySelector("audio") || card.appendChild(el("audio", { controls: "" }));
      audio.src = URL.createObjectURL(blob);
      return audio.play().catch(function () { /* autoplay refused: the controls are there */ });
    }).catch(function (error) { previewStatus.textContent = say("preview_error", { WHY: error.message }); })
      .finally(function () { button.disabled = false; });
  }
  var changed = debounce(function () { refreshPreview(); count(); }, 300);
  ["title", "description", "radius_m", "lon", "lat", "geojson", "postcodes"].forEach(function (name) {
    form[name].addEventListener("input", changed);
  });
  form.querySelectorAll("input[name=channels]").forEach(function (box) { box.addEventListener("change", changed); });
  if (form.lon.value && form.lat.value) { drawCircle(); }
  refreshPreview();
})();
