"use strict";
/* The sighting form: a click on the map fills latitude and longitude (typing them moves the pin).
   On the action page the form is sent with fetch (errors shown in place, nothing typed is lost);
   on the standalone page (…/sightings/new) it posts the ordinary way. */
window.BurgernetSightingForm = (function () {
  function attach(map, onRecorded) {
    var form = document.getElementById("sighting-form");
    if (!form) { return; }
    var lat = form.querySelector("[name=lat]");
    var lon = form.querySelector("[name=lon]");
    var error = document.getElementById("sighting-error");
    var pin = null;

    function place(latlng) {
      lat.value = latlng.lat.toFixed(6);
      lon.value = latlng.lng.toFixed(6);
      if (pin) { pin.setLatLng(latlng); } else { pin = L.marker(latlng, { title: "new sighting" }).addTo(map); }
    }
    map.on("click", function (e) { place(e.latlng); });
    [lat, lon].forEach(function (input) {
      input.addEventListener("change", function () {
        var a = parseFloat(lat.value.replace(",", ".")), b = parseFloat(lon.value.replace(",", "."));
        if (!isNaN(a) && !isNaN(b)) { place(L.latLng(a, b)); }
      });
    });
    if (!onRecorded) { return; }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" }
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (answer) {
        button.disabled = false;
        if (!answer.ok) {
          error.textContent = answer.body.error || answer.body.message || String(answer.body.status);
          error.hidden = false;
          return;
        }
        error.hidden = true;
        form.querySelector("[name=description]").value = "";
        lat.value = "";
        lon.value = "";
        if (pin) { map.removeLayer(pin); pin = null; }
        onRecorded(answer.body);
      }).catch(function () {
        button.disabled = false;
        error.textContent = "The panel could not be reached; nothing was lost, try again.";
        error.hidden = false;
      });
    });
  }
  return { attach: attach };
})();

(function () {
  var element = document.getElementById("map");
  if (!element || element.dataset.sightingStandalone !== "yes") { return; }
  var map = BurgernetMap.create(element);
  fetch(element.dataset.area, { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (feature) {
      var drawn = BurgernetMap.featureLayer(feature);
      if (drawn) { drawn.addTo(map); map.fitBounds(drawn.getBounds(), { maxZoom: 14 }); }
    });
  window.BurgernetSightingForm.attach(map, null);
})();
