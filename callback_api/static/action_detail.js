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
