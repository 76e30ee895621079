/* Shared Leaflet helpers for the panel (Leaflet is served from /vendor, no CDN). */
"use strict";
window.BurgernetMap = (function () {
  function create(element) {
    var map = L.map(element, { scrollWheelZoom: false }).setView([52.2, 5.3], 7);
    var tiles = element.dataset.tiles;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: "&copy; OpenStreetMap" }).addTo(map);
    }
    if (element.dataset.regions) {
      // Region borders work without any tile server (offline control rooms).
      fetch(element.dataset.regions, { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (data) {
          L.geoJSON(data, { style: { color: "#555", weight: 1, fillOpacity: 0.03 } }).addTo(map);
        });
    }
    return map;
  }
  function featureLayer(feature) {
    if (!feature.geometry) { return null; }
    var radius = feature.properties && feature.properties.radius_m;
    return L.geoJSON(feature, {
      pointToLayer: function (_f, latlng) {
        return radius ? L.circle(latlng, { radius: radius }) : L.marker(latlng);
      },
      style: { color: "#c40000", weight: 2, fillOpacity: 0.15 }
    });
  }
  return { create: create, featureLayer: featureLayer };
})();
