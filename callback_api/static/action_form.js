/* New action: show the fields of the chosen area kind, draw circles/polygons, count recipients live. */
"use strict";
(function () {
  var form = document.getElementById("action-form");
  var radios = form.querySelectorAll("input[name=area_kind]");
  function kind() { var c = form.querySelector("input[name=area_kind]:checked"); return c ? c.value : "circle"; }
  function showFields() {
    form.querySelectorAll("[data-area]").forEach(function (box) { box.hidden = box.dataset.area !== kind(); });
  }
  radios.forEach(function (r) { r.addEventListener("change", function () { showFields(); count(); }); });
  showFields();

  var map = BurgernetMap.create(document.getElementById("draw-map"));
  var drawn = new L.FeatureGroup().addTo(map);
  map.addControl(new L.Control.Draw({
    edit: { featureGroup: drawn },
    draw: { polyline: false, rectangle: false, marker: false, circlemarker: false, circle: true, polygon: true }
  }));
  map.on(L.Draw.Event.CREATED, function (e) {
    drawn.clearLayers();
    drawn.addLayer(e.layer);
    fromLayer(e.layer);
  });
  map.on(L.Draw.Event.EDITED, function (e) { e.layers.eachLayer(fromLayer); });

  function setKind(value) {
    radios.forEach(function (r) { r.checked = r.value === value; });
    showFields();
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
    count();
  }

  var output = document.getElementById("recipient-count");
  var button = document.getElementById("count-button");
  var token = document.querySelector("meta[name=csrf-token]").content;
  function count() {
    var data = new FormData(form);
    data.delete("photo");
    fetch(button.dataset.url, { method: "POST", body: data, credentials: "same-origin",
                                headers: { "X-CSRFToken": token } })
      .then(function (r) { return r.json(); })
      .then(function (result) {
        output.textContent = result.error ? result.error
          : output.dataset.label.replace("COUNT", String(result.recipients));
      });
  }
  button.addEventListener("click", count);
  ["lon", "lat", "radius_m", "geojson", "postcodes"].forEach(function (name) {
    form[name].addEventListener("change", count);
  });
})();
