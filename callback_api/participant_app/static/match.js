/* Every decision the service worker makes about a push, in one place and without side effects.

   Loaded by the service worker (importScripts) and by the app page (<script>), so the tests
   can call each function in the browser exactly as the worker does. Nothing here touches the
   network, IndexedDB or the notification API: it gets the push payload and the device's places
   and says what to do.

   The payload is the one burgernet/app_alerts.py builds (the app contract):
   {v: 1, kind: alert|update|result|reply, action: {id, code, type, title, photo_url, area},
    message, free_number, sighting_id?}. The area is matched ON THE DEVICE: the places never
   leave it. */
(function (scope) {
  "use strict";

  var EARTH_RADIUS_M = 6371008.8;  // the mean radius routing/areas.py uses too
  // A PC4 without a boundary in the payload: a circle of 2.5 km around its centre (contract).
  var PC4_FALLBACK_M = 2500;
  var GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz";
  var CELL_LENGTH = 4;  // about 20 x 40 km in the Netherlands: all the server may know
  var KINDS = ["alert", "update", "result", "reply"];

  function haversine(lat1, lon1, lat2, lon2) {
    var rad = Math.PI / 180;
    var dLat = (lat2 - lat1) * rad;
    var dLon = (lon2 - lon1) * rad;
    var a = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  /* Ray casting: is (lon, lat) inside the closed ring [[lon, lat], ...]? */
  function inRing(lon, lat, ring) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > lat) !== (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) {
        inside = !inside;
      }
    }
    return inside;
  }

  /* A GeoJSON polygon: inside the outer ring and in none of its holes. */
  function inPolygon(lon, lat, rings) {
    if (!rings || !rings.length || !inRing(lon, lat, rings[0])) { return false; }
    for (var h = 1; h < rings.length; h++) {
      if (inRing(lon, lat, rings[h])) { return false; }
    }
    return true;
  }

  function inGeometry(lon, lat, geometry) {
    if (!geometry || typeof geometry !== "object") { return false; }
    switch (geometry.type) {
      case "Polygon":
        return inPolygon(lon, lat, geometry.coordinates);
      case "MultiPolygon":
        return (geometry.coordinates || []).some(function (rings) { return inPolygon(lon, lat, rings); });
      case "GeometryCollection":
        return (geometry.geometries || []).some(function (g) { return inGeometry(lon, lat, g); });
      case "Feature":
        return inGeometry(lon, lat, geometry.geometry);
      case "FeatureCollection":
        return (geometry.features || []).some(function (f) { return inGeometry(lon, lat, f); });
      default:
        return false;  // a point or a line has no inside
    }
  }

  function isNumber(value) { return typeof value === "number" && isFinite(value); }

  /* Is the place {lat, lon} inside the area of the payload? */
  function placeInArea(place, area) {
    if (!area || !place || !isNumber(place.lat) || !isNumber(place.lon)) { return false; }
    switch (area.kind) {
      case "national":
        return true;
      case "circle":
        return haversine(place.lat, place.lon, area.lat, area.lon) <= area.radius_m;
      case "polygon":
        return inGeometry(place.lon, place.lat, area.geojson);
      case "postcodes":
        return (area.pc4 || []).some(function (pc) {
          return pc.geojson ? inGeometry(place.lon, place.lat, pc.geojson)
            : haversine(place.lat, place.lon, pc.lat, pc.lon) <= PC4_FALLBACK_M;
        });
      default:
        return false;
    }
  }

  function placesInArea(places, area) {
    return (places || []).filter(function (place) { return placeInArea(place, area); });
  }

  function validPayload(payload) {
    return !!payload && payload.v === 1 && KINDS.indexOf(payload.kind) >= 0 &&
      !!payload.action && isNumber(payload.action.id);
  }

  /* What to do with a push. ``shown`` lists the action ids this device showed an alert for.
     Returns {show, reason, places}; reason "fetch" means: get the full area
     (GET /app/api/actions/<id>) and decide again with it. */
  function decide(payload, places, shown) {
    if (!validPayload(payload)) { return { show: false, reason: "invalid", places: [] }; }
    var id = payload.action.id;
    var seen = (shown || []).indexOf(id) >= 0;
    if (payload.kind === "reply") {
      // The answer to this device's own sighting: always shown.
      return { show: true, reason: "reply", places: [] };
    }
    if (payload.kind === "update" || payload.kind === "result") {
      // Only on devices that showed the alert: the others were never told about it.
      return { show: seen, reason: seen ? "alerted" : "not-alerted", places: [] };
    }
    var area = payload.action.area || {};
    if (area.kind === "fetch") { return { show: false, reason: "fetch", places: [] }; }
    if (area.kind === "national") { return { show: true, reason: "national", places: [] }; }
    if (!places || !places.length) { return { show: false, reason: "no-places", places: [] }; }
    var inside = placesInArea(places, area);
    return {
      show: inside.length > 0,
      reason: inside.length ? "inside" : "outside",
      places: inside.map(function (p) { return p.slot; })
    };
  }

  /* --- the coarse cell the device may tell the server ------------------------------------- */
  function geohash(lat, lon, precision) {
    var latRange = [-90, 90], lonRange = [-180, 180];
    var hash = "", bits = 0, value = 0, even = true;
    precision = precision || CELL_LENGTH;
    while (hash.length < precision) {
      var range = even ? lonRange : latRange;
      var coordinate = even ? lon : lat;
      var middle = (range[0] + range[1]) / 2;
      value <<= 1;
      if (coordinate >= middle) { value |= 1; range[0] = middle; } else { range[1] = middle; }
      even = !even;
      if (++bits === 5) { hash += GEOHASH.charAt(value); bits = 0; value = 0; }
    }
    return hash;
  }

  /* One cell for all places, or null: with places in two cells the device asks for every
     local alert (null) rather than miss those for one of its places. */
  function cellFor(places) {
    var cells = {};
    (places || []).forEach(function (p) {
      if (isNumber(p.lat) && isNumber(p.lon)) { cells[geohash(p.lat, p.lon, CELL_LENGTH)] = true; }
    });
    var keys = Object.keys(cells);
    return keys.length === 1 ? keys[0] : null;
  }

  /* --- words ------------------------------------------------------------------------------ */
  function words() { return (scope.BURGERNET_WORDS || {}); }

  function translate(lang, text, values) {
    var table = lang === "nl" ? (words().nl || {}) : {};
    var result = Object.prototype.hasOwnProperty.call(table, text) ? table[text] : text;
    if (values) {
      result = result.replace(/%\((\w+)\)s/g, function (_m, name) {
        return values[name] === undefined ? "" : String(values[name]);
      });
    }
    return result;
  }

  /* The language for a list like navigator.languages: the first of nl/en, Dutch by default. */
  function chooseLanguage(preferred) {
    for (var i = 0; i < (preferred || []).length; i++) {
      var code = String(preferred[i]).toLowerCase().slice(0, 2);
      if (code === "nl" || code === "en") { return code; }
    }
    return "nl";
  }

  /* --- the notification ------------------------------------------------------------------- */
  function displayNumber(digits) {
    digits = String(digits || "");
    return /^0[89]00\d{4}$/.test(digits) ? digits.slice(0, 4) + "-" + digits.slice(4) : digits;
  }

  function telUrl(freeNumber, code) {
    // The comma is a pause: the phone dials the action code once the menu answers.
    return "tel:" + String(freeNumber || "") + (code ? "," + code : "");
  }

  var TYPE_LABELS = {
    missing_person: "Missing person",
    missing_child: "Missing child",
    amber_alert: "AMBER Alert",
    suspect: "Suspect",
    vehicle: "Vehicle",
    information: "Information"
  };

  /* The notification for a payload the device decided to show: {title, options}. */
  function notification(payload, lang, origin) {
    var action = payload.action;
    var t = function (text, values) { return translate(lang, text, values); };
    var number = displayNumber(payload.free_number);
    var label = t(TYPE_LABELS[action.type] || "Burgernet");
    var titles = {
      alert: label + ": " + action.title,
      update: t("Update") + ": " + action.title,
      result: t("Result") + ": " + action.title,
      reply: t("A question from the control room")
    };
    var lines = [payload.message || ""];
    if (payload.kind === "alert" || payload.kind === "update") {
      lines.push(action.code
        ? t("Seen something? Call %(number)s and key in action code %(code)s.", { number: number, code: action.code })
        : t("Seen something? Call %(number)s.", { number: number }));
    }
    var actions = [];
    if (payload.kind === "reply") {
      actions.push({ action: "answer", title: t("Answer") });
      actions.push({ action: "call", title: t("Call %(number)s", { number: number }) });
    } else if (payload.kind !== "result") {
      actions.push({ action: "call", title: t("Call %(number)s", { number: number }) });
      actions.push({ action: "sighting", title: t("I saw something") });
    }
    var options = {
      body: lines.filter(Boolean).join("\n"),
      tag: "burgernet-" + action.id + (payload.kind === "reply" ? "-reply-" + payload.sighting_id : ""),
      renotify: true,
      requireInteraction: payload.kind === "alert" || payload.kind === "reply",
      lang: lang,
      icon: (origin || "") + "/app/icons/192.png",
      badge: (origin || "") + "/app/icons/192.png",
      actions: actions,
      data: {
        kind: payload.kind,
        action_id: action.id,
        code: action.code || null,
        free_number: payload.free_number || "",
        sighting_id: payload.sighting_id || null
      }
    };
    if (action.photo_url && payload.kind === "alert") { options.image = (origin || "") + action.photo_url; }
    return { title: titles[payload.kind], options: options };
  }

  /* Where a click on the notification (or one of its buttons) goes. */
  function clickTarget(buttonAction, data) {
    data = data || {};
    if (buttonAction === "call") { return telUrl(data.free_number, data.code); }
    if (buttonAction === "sighting") { return "/app/#/sighting/" + data.action_id; }
    if (buttonAction === "answer" || data.kind === "reply") {
      return "/app/#/sighting/" + data.action_id + "/reply/" + data.sighting_id;
    }
    return "/app/#/alert/" + data.action_id;
  }

  scope.BurgernetMatch = {
    PC4_FALLBACK_M: PC4_FALLBACK_M,
    CELL_LENGTH: CELL_LENGTH,
    haversine: haversine,
    inRing: inRing,
    inPolygon: inPolygon,
    inGeometry: inGeometry,
    placeInArea: placeInArea,
    placesInArea: placesInArea,
    decide: decide,
    geohash: geohash,
    cellFor: cellFor,
    translate: translate,
    chooseLanguage: chooseLanguage,
    displayNumber: displayNumber,
    telUrl: telUrl,
    notification: notification,
    clickTarget: clickTarget
  };
})(self);
