/* The participant app: places on this device, alerts on or off, the recent alerts, a sighting.

   Places live only in IndexedDB (store.js). The server hears of them only as one coarse cell
   (a 4-character geohash, match.js cellFor) sent with the push subscription, and a postcode
   typed in is looked up (GET /app/api/postcodes/<code>) without being stored. Routes are in
   the URL's hash, so the one cached page works offline:
     #/                             home: alerts, places, recent alerts
     #/alert/<action id>            home, that alert highlighted
     #/sighting/<action id>         the sighting form ("I saw something")
     #/sighting/<id>/reply/<sid>    the same, answering the control room's question
     #/call/<code>                  a big call button: the free number with the action code */
(function () {
  "use strict";

  var M = window.BurgernetMatch;
  var S = window.BurgernetStore;
  var body = document.body;
  var freeNumber = body.dataset.freeNumber || "08000011";
  var lang = M.chooseLanguage(navigator.languages || [navigator.language]);
  var pickMap = null;
  var pickMarker = null;
  var pickSlot = null;
  var sightingPlace = null;
  var sightingAction = null;
  var replyTo = null;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function t(text, values) { return M.translate(lang, text, values); }
  function number() { return M.displayNumber(freeNumber); }

  function say(element, text, isError) {
    element.textContent = text;
    element.hidden = !text;
    element.classList.toggle("error", !!isError);
  }

  /* --- language -------------------------------------------------------------------------- */
  function applyWords() {
    document.documentElement.lang = lang;
    all("[data-t]").forEach(function (el) { el.textContent = t(el.dataset.t, { number: number() }); });
    all("[data-t-label]").forEach(function (el) { el.setAttribute("aria-label", t(el.dataset.tLabel)); });
    all("[data-lang]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    });
    renderPlaces();
    renderMessages();
    renderPushState();
  }

  function setLanguage(code) {
    lang = code;
    S.setSetting("lang", code).then(function () { return resend(); }).catch(function () { /* offline */ });
    applyWords();
  }

  /* --- places ---------------------------------------------------------------------------- */
  function describe(place) {
    var where = place.lat.toFixed(4) + ", " + place.lon.toFixed(4);
    return place.label ? place.label + " (" + where + ")" : where;
  }

  function renderPlaces() {
    return S.places().then(function (places) {
      var bySlot = {};
      places.forEach(function (p) { bySlot[p.slot] = p; });
      all("#places [data-slot]").forEach(function (item) {
        var place = bySlot[item.dataset.slot];
        $(".where", item).textContent = place ? describe(place) : t("Not set");
        item.classList.toggle("set", !!place);
        $("[data-do=remove]", item).hidden = !place;
      });
      var none = !places.length;
      $("#places-hint").hidden = !none;
      return places;
    });
  }

  function placesChanged(message) {
    say($("#places-status"), message || "");
    return renderPlaces().then(function () { return resend(); }).then(renderPushState)
      .catch(function () { /* offline: the cell is sent the next time */ });
  }

  function savePlace(slot, lat, lon, how, label) {
    var place = { slot: slot, lat: lat, lon: lon, how: how, label: label || "", at: new Date().toISOString() };
    return S.savePlace(place).then(function () { return placesChanged(t("Place saved on this phone.")); });
  }

  function locate(callback, status) {
    if (!navigator.geolocation) { say(status, t("This phone cannot tell its location."), true); return; }
    say(status, t("Asking for your location…"));
    navigator.geolocation.getCurrentPosition(function (position) {
      say(status, "");
      callback(position.coords.latitude, position.coords.longitude);
    }, function () {
      say(status, t("Your location was not shared. You can enter a postcode instead."), true);
    }, { enableHighAccuracy: false, timeout: 20000, maximumAge: 60000 });
  }

  function lookUpPostcode(slot, text) {
    var status = $("#places-status");
    var code = text.replace(/\s+/g, "").toUpperCase();
    if (!/^[1-9][0-9]{3}([A-Z]{2})?$/.test(code)) {
      say(status, t("Enter a Dutch postcode: 1234 or 1234 AB."), true);
      return;
    }
    fetch("/app/api/postcodes/" + encodeURIComponent(code)).then(function (response) {
      if (response.status === 404) { throw new Error(t("This postcode is not known.")); }
      if (!response.ok) { throw new Error(t("Enter a Dutch postcode: 1234 or 1234 AB.")); }
      return response.json();
    }).then(function (found) {
      return savePlace(slot, found.lat, found.lon, "postcode", found.postcode);
    }).catch(function (error) {
      say(status, error && error.message && error.name === "Error" ? error.message
        : t("No connection. Try again later."), true);
    });
  }

  function openPicker(slot) {
    pickSlot = slot;
    $("#map-picker").hidden = false;
    $("#pick-title").textContent = t("Pick %(place)s on the map", { place: t(slot === "home" ? "Home" : "Work") });
    if (!window.L) { return; }
    if (!pickMap) {
      pickMap = L.map("pick-map").setView([52.2, 5.3], 7);
      if (body.dataset.tiles) {
        L.tileLayer(body.dataset.tiles, { maxZoom: 18, attribution: "© OpenStreetMap" }).addTo(pickMap);
      }
      pickMap.on("click", function (event) {
        if (pickMarker) { pickMarker.setLatLng(event.latlng); } else { pickMarker = L.marker(event.latlng).addTo(pickMap); }
        $("#pick-save").disabled = false;
      });
    }
    $("#pick-save").disabled = !pickMarker;
    setTimeout(function () { pickMap.invalidateSize(); }, 0);
    $("#pick-title").focus();
  }

  function closePicker() {
    $("#map-picker").hidden = true;
    var button = $("#places [data-slot=" + pickSlot + "] [data-do=map]");
    if (button) { button.focus(); }
  }

  /* --- alerts on or off ------------------------------------------------------------------ */
  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  function base64UrlBytes(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function currentSubscription() {
    if (!supported()) { return Promise.resolve(null); }
    return navigator.serviceWorker.ready.then(function (r) { return r.pushManager.getSubscription(); });
  }

  /* Tell the server this device's subscription, its cell and language (idempotent). */
  function send(subscription) {
    return S.places().then(function (places) {
      var payload = { subscription: subscription.toJSON(), cell: M.cellFor(places), lang: lang };
      return fetch("/app/api/push/subscriptions", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload)
      }).then(function (response) {
        if (!response.ok) { throw new Error("subscription refused: " + response.status); }
        return S.setSetting("endpoint", subscription.endpoint);
      }).then(function () { return S.setSetting("cell", payload.cell); });
    });
  }

  function resend() {
    return S.setting("endpoint").then(function (endpoint) {
      if (!endpoint) { return null; }
      return currentSubscription().then(function (subscription) { return subscription ? send(subscription) : null; });
    });
  }

  function turnOn() {
    var status = $("#push-status");
    if (!supported()) {
      say(status, t("This browser cannot receive alerts. On an iPhone, add the app to your home screen first."), true);
      return Promise.resolve();
    }
    say(status, t("Turning alerts on…"));
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new Error("denied"); }
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.getSubscription().then(function (existing) {
        if (existing) { return existing; }
        return fetch("/app/api/push/key").then(function (r) {
          if (!r.ok) { throw new Error("no key"); }
          return r.json();
        }).then(function (key) {
          return registration.pushManager.subscribe({
            userVisibleOnly: true, applicationServerKey: base64UrlBytes(key.public_key)
          });
        });
      });
    }).then(send).then(renderPushState).catch(function (error) {
      say(status, error && error.message === "denied"
        ? t("Notifications are blocked for this app. Allow them in your browser's site settings, then try again.")
        : t("Alerts could not be turned on. Check your connection and try again."), true);
    });
  }

  function turnOff() {
    return currentSubscription().then(function (subscription) {
      if (!subscription) { return null; }
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () {
        return fetch("/app/api/push/subscriptions", {
          method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ endpoint: endpoint })
        });
      });
    }).then(function () { return S.setSetting("endpoint", null); }).then(renderPushState)
      .catch(function () { say($("#push-status"), t("No connection. Try again later."), true); });
  }

  function renderPushState() {
    return Promise.all([S.setting("endpoint"), S.places()]).then(function (state) {
      var on = !!state[0] && supported() && Notification.permission === "granted";
      $("#push-on").hidden = on;
      $("#push-off").hidden = !on;
      var text = on ? t("Alerts are on.") : t("Alerts are off.");
      if (on && !state[1].length) { text += " " + t("Add a place: without one you only get nationwide AMBER Alerts."); }
      say($("#push-status"), text);
    });
  }

  /* --- the recent alerts (as the notifications showed them) ---------------------------- */
  function buttonFor(button, message) {
    var link = document.createElement("a");
    link.className = "button" + (button.action === "call" ? " call" : "");
    link.textContent = button.title;
    var data = message.data || { action_id: message.action_id, code: message.code, free_number: message.free_number };
    var target = M.clickTarget(button.action, data);
    link.href = target.indexOf("tel:") === 0 ? target : "#" + target.split("#")[1];
    return link;
  }

  function renderMessages() {
    return S.messages().then(function (messages) {
      var list = $("#recent");
      list.textContent = "";
      $("#recent-none").hidden = messages.length > 0;
      var wanted = (location.hash.match(/^#\/alert\/(\d+)/) || [])[1];
      messages.forEach(function (message) {
        var item = document.createElement("li");
        var card = document.createElement("article");
        card.className = "notification kind-" + message.kind;
        card.dataset.actionId = message.action_id;
        var title = document.createElement("h3");
        title.textContent = message.title;
        var text = document.createElement("p");
        text.className = "body";
        text.textContent = message.body;
        var when = document.createElement("time");
        when.dateTime = message.at;
        when.textContent = new Date(message.at).toLocaleString(lang === "nl" ? "nl-NL" : "en-GB",
          { dateStyle: "short", timeStyle: "short" });
        card.appendChild(when);
        card.appendChild(title);
        card.appendChild(text);
        var buttons = document.createElement("div");
        buttons.className = "buttons";
        (message.buttons || []).forEach(function (b) { buttons.appendChild(buttonFor(b, message)); });
        card.appendChild(buttons);
        item.appendChild(card);
        list.appendChild(item);
        if (wanted && String(message.action_id) === wanted) { card.classList.add("wanted"); }
      });
      return messages;
    });
  }

  /* --- the sighting form ---------------------------------------------------------------- */
  function resetSighting() {
    $("#sighting-form").reset();
    $("#sighting-form").hidden = false;
    sightingPlace = null;
    renderSightingPlace();
    say($("#s-error"), "");
    $("#sighting-done").hidden = true;
  }

  function renderSightingPlace() {
    $("#s-place").textContent = sightingPlace
      ? t("Location added: %(where)s", { where: sightingPlace.lat.toFixed(5) + ", " + sightingPlace.lon.toFixed(5) })
      : t("No location added.");
    $("#s-unlocate").hidden = !sightingPlace;
  }

  function showSighting(actionId, replyId) {
    resetSighting();
    sightingAction = actionId;
    replyTo = replyId;
    var info = $("#sighting-action");
    info.textContent = "";
    $("#reply-question").hidden = true;
    if (replyId) {
      S.messages().then(function (messages) {
        var question = messages.filter(function (m) {
          return m.kind === "reply" && m.data && String(m.data.sighting_id) === String(replyId);
        })[0];
        if (question) {
          $("#reply-question").textContent = t("The control room asks: %(question)s", { question: question.body });
          $("#reply-question").hidden = false;
        }
      });
    }
    fetch("/app/api/actions/" + encodeURIComponent(actionId), { cache: "no-store" }).then(function (response) {
      if (response.status === 404) { throw new Error("gone"); }
      if (!response.ok) { throw new Error("offline"); }
      return response.json();
    }).then(function (action) {
      var title = document.createElement("p");
      title.className = "action-title";
      title.textContent = action.title;
      info.appendChild(title);
      if (action.code) {
        var code = document.createElement("p");
        code.textContent = t("Action code %(code)s", { code: action.code });
        info.appendChild(code);
      }
      if (action.photo_url) {
        var photo = document.createElement("img");
        photo.src = action.photo_url;
        photo.alt = t("Photo with the alert");
        info.appendChild(photo);
      }
    }).catch(function (error) {
      var text = document.createElement("p");
      if (error.message === "gone") {
        text.textContent = t("This action has ended. If you saw something, call %(number)s.", { number: number() });
        $("#sighting-form").hidden = true;
      } else {
        text.textContent = t("No connection. Call %(number)s to tell the control room.", { number: number() });
      }
      info.appendChild(text);
    });
  }

  function submitSighting(event) {
    event.preventDefault();
    var form = $("#sighting-form");
    var error = $("#s-error");
    var text = $("#s-text").value.trim();
    if (!text) { say(error, t("Describe what you saw."), true); $("#s-text").focus(); return; }
    var question = $("#reply-question").hidden ? "" : $("#reply-question").textContent;
    var data = new FormData();
    data.append("description", question ? question + "\n\n" + text : text);
    var minutes = parseInt($("#s-when").value, 10) || 0;
    data.append("seen_at", new Date(Date.now() - minutes * 60000).toISOString());
    if (sightingPlace) {
      data.append("lat", String(sightingPlace.lat));
      data.append("lon", String(sightingPlace.lon));
    }
    var photo = $("#s-photo").files[0];
    if (photo) { data.append("photo", photo, photo.name || "photo.jpg"); }
    var submit = $("button[type=submit]", form);
    submit.disabled = true;
    say(error, "");
    S.setting("endpoint").then(function (endpoint) {
      if (endpoint) { data.append("endpoint", endpoint); }
      return fetch("/app/api/actions/" + encodeURIComponent(sightingAction) + "/sightings", { method: "POST", body: data });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.status === 201) { return answer; }
        var messages = {
          413: t("The photo is too large (at most 8 MB)."),
          429: t("You sent several sightings in a short time. Please wait a little, or call %(number)s.", { number: number() }),
          404: t("This action has ended. If you saw something, call %(number)s.", { number: number() }),
          409: t("This action has ended. If you saw something, call %(number)s.", { number: number() })
        };
        var reason = messages[response.status] || (answer.error && answer.error.message) || t("Not sent.");
        throw new Error(reason);
      });
    }).then(function (answer) {
      return S.addSent({ id: answer.id, action_id: sightingAction, at: new Date().toISOString() }).then(function () {
        form.hidden = true;
        var done = $("#sighting-done");
        $("#sighting-done-text").textContent = t("Thank you. The control room has your sighting (number %(id)s).", { id: answer.id });
        done.hidden = false;
        done.focus();
      });
    }).catch(function (failure) {
      var offline = failure instanceof TypeError;
      say(error, offline ? t("No connection. Call %(number)s to tell the control room.", { number: number() }) : failure.message, true);
    }).then(function () { submit.disabled = false; });
  }

  /* --- routes --------------------------------------------------------------------------- */
  function route() {
    var hash = location.hash || "#/";
    var sighting = hash.match(/^#\/sighting\/(\d+)(?:\/reply\/(\d+))?/);
    var call = hash.match(/^#\/call\/(\d*)/);
    var view = sighting ? "sighting" : call ? "call" : "home";
    all("[data-view]").forEach(function (section) { section.hidden = section.dataset.view !== view; });
    if (sighting) { showSighting(sighting[1], sighting[2] || null); }
    if (call) {
      var link = $("#call-link");
      link.href = M.telUrl(freeNumber, call[1]);
      link.textContent = t("Call %(number)s", { number: number() });
      $("#call-code").textContent = call[1] ? t("Then key in action code %(code)s.", { code: call[1] }) : "";
    }
    if (view === "home") { renderMessages(); }
    var heading = $("[data-view=" + view + "] h1");
    if (heading && document.activeElement !== document.body) { heading.focus(); }
  }

  function online() { $("#offline").hidden = navigator.onLine; }

  /* --- wiring --------------------------------------------------------------------------- */
  all("[data-lang]").forEach(function (button) {
    button.addEventListener("click", function () { setLanguage(button.dataset.lang); });
  });
  all("#places [data-slot]").forEach(function (item) {
    var slot = item.dataset.slot;
    item.addEventListener("click", function (event) {
      var what = event.target.dataset && event.target.dataset.do;
      if (what === "locate") {
        locate(function (lat, lon) {
          savePlace(slot, lat, lon, "gps", t("Located %(time)s", {
            time: new Date().toLocaleString(lang === "nl" ? "nl-NL" : "en-GB", { dateStyle: "short", timeStyle: "short" })
          }));
        }, $("#places-status"));
      } else if (what === "remove") {
        S.removePlace(slot).then(function () { return placesChanged(t("Place removed from this phone.")); });
      } else if (what === "map") {
        openPicker(slot);
      }
    });
    var postcode = $("form.postcode", item);
    if (postcode) {
      postcode.addEventListener("submit", function (event) {
        event.preventDefault();
        lookUpPostcode(slot, $("input", postcode).value);
      });
    }
  });
  $("#pick-save").addEventListener("click", function () {
    if (!pickMarker) { return; }
    var at = pickMarker.getLatLng();
    savePlace(pickSlot, Math.round(at.lat * 1e5) / 1e5, Math.round(at.lng * 1e5) / 1e5, "map", t("Picked on the map"))
      .then(closePicker);
  });
  $("#pick-cancel").addEventListener("click", closePicker);
  $("#push-on").addEventListener("click", turnOn);
  $("#push-off").addEventListener("click", turnOff);
  $("#sighting-form").addEventListener("submit", submitSighting);
  $("#s-locate").addEventListener("click", function () {
    locate(function (lat, lon) { sightingPlace = { lat: lat, lon: lon }; renderSightingPlace(); }, $("#s-error"));
  });
  $("#s-unlocate").addEventListener("click", function () { sightingPlace = null; renderSightingPlace(); $("#s-locate").focus(); });
  window.addEventListener("hashchange", route);
  window.addEventListener("online", online);
  window.addEventListener("offline", online);

  var registered = supported()
    ? navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(function () { return null; })
    : Promise.resolve(null);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (!event.data) { return; }
      if (event.data.type === "burgernet-message") { renderMessages(); }
      if (event.data.type === "burgernet-open") { location.href = event.data.url; }
    });
  }

  var ready = S.setting("lang").then(function (stored) {
    if (stored) { lang = stored; }
  }).catch(function () { /* no IndexedDB (private mode): the browser's language */ }).then(function () {
    applyWords();
    online();
    route();
    return registered;
  });

  // For the tests and the diagnostics: what the page decided, and when it is ready.
  window.BurgernetApp = {
    ready: ready,
    language: function () { return lang; },
    resend: resend,
    renderMessages: renderMessages,
    renderPlaces: renderPlaces
  };
})();
