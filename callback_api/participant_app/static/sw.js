/* The participant app's service worker (served as /app/sw.js, scope /app/).

   Offline: the app shell is cached on install; pages and assets come from the network when
   there is one (so an update arrives at once) and from the cache when there is none.

   Push: the payload says which action and where (burgernet/app_alerts.py). This worker matches
   the places stored on the device against the area (match.js: every decision is there) and
   shows a notification only when one is inside; it remembers which actions it showed, so an
   update or a result is shown only on a device that showed the alert. A question back from the
   control room ("reply") is always shown. */
importScripts("/app/words.js", "/app/static/match.js", "/app/static/store.js");

var SHELL_CACHE = "burgernet-app-shell-v1";
var SHELL = [
  "/app/",
  "/app/static/app.js",
  "/app/static/app.css",
  "/app/static/match.js",
  "/app/static/store.js",
  "/app/words.js",
  "/app/manifest.webmanifest",
  "/app/icons/192.png",
  "/app/icons/512.png",
  "/vendor/leaflet/leaflet.js",
  "/vendor/leaflet/leaflet.css"
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(SHELL_CACHE).then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== SHELL_CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.indexOf("/app/api/") === 0) {
    return;  // the API is never cached: an action's state and a sighting's answer are live
  }
  var shell = request.mode === "navigate" ? "/app/" : null;
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && SHELL.indexOf(url.pathname) >= 0) {
      var copy = response.clone();
      caches.open(SHELL_CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(shell || request, { ignoreSearch: true }).then(function (cached) {
      return cached || Response.error();
    });
  }));
});

function language() {
  return BurgernetStore.setting("lang").then(function (lang) {
    return lang || BurgernetMatch.chooseLanguage(self.navigator.languages || [self.navigator.language]);
  });
}

/* The full area of a payload too large for a push ({kind: "fetch"}). */
function withFullArea(payload) {
  return fetch("/app/api/actions/" + encodeURIComponent(payload.action.id), { cache: "no-store" })
    .then(function (response) {
      if (!response.ok) { throw new Error("action " + payload.action.id + ": " + response.status); }
      return response.json();
    }).then(function (document) {
      var copy = JSON.parse(JSON.stringify(payload));
      copy.action.area = document.area;
      return copy;
    });
}

function tellPages(message) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (pages) {
    pages.forEach(function (page) { page.postMessage(message); });
  });
}

/* Decide, show, remember. Returns the decision (kept in "settings" as last_decision, which
   the app's diagnostics and the tests read). */
function handlePush(payload) {
  return Promise.all([BurgernetStore.places(), BurgernetStore.shownIds()]).then(function (state) {
    var decision = BurgernetMatch.decide(payload, state[0], state[1]);
    if (decision.reason !== "fetch") { return { payload: payload, decision: decision }; }
    return withFullArea(payload).then(function (full) {
      return { payload: full, decision: BurgernetMatch.decide(full, state[0], state[1]) };
    });
  }).then(function (outcome) {
    var decision = outcome.decision;
    var record = { reason: decision.reason, show: decision.show, places: decision.places,
                   kind: payload && payload.kind, action_id: payload && payload.action && payload.action.id,
                   at: new Date().toISOString() };
    // Written last: whoever reads the decision finds the notification already shown.
    var remember = function () { return BurgernetStore.setSetting("last_decision", record); };
    if (!decision.show) { return remember().then(function () { return decision; }); }
    return language().then(function (lang) {
      var built = BurgernetMatch.notification(outcome.payload, lang, self.location.origin);
      var action = outcome.payload.action;
      return self.registration.showNotification(built.title, built.options).then(function () {
        return Promise.all([
          outcome.payload.kind === "alert" ? BurgernetStore.markShown(action.id, "alert") : null,
          BurgernetStore.addMessage({
            kind: outcome.payload.kind, action_id: action.id, code: action.code || null,
            title: built.title, body: built.options.body, lang: lang,
            buttons: built.options.actions, data: built.options.data,
            free_number: outcome.payload.free_number || "", at: new Date().toISOString()
          })
        ]);
      }).then(function () { return tellPages({ type: "burgernet-message" }); })
        .then(remember).then(function () { return decision; });
    });
  });
}

self.addEventListener("push", function (event) {
  var payload = null;
  try { payload = event.data ? event.data.json() : null; } catch (_error) { payload = null; }
  event.waitUntil(handlePush(payload).catch(function (error) {
    return BurgernetStore.setSetting("last_decision", { reason: "error", show: false, error: String(error),
                                                       at: new Date().toISOString() });
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = BurgernetMatch.clickTarget(event.action, event.notification.data);
  var inApp = target.indexOf("tel:") === 0
    ? "/app/#/call/" + encodeURIComponent((event.notification.data || {}).code || "")
    : target;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (pages) {
    var open = pages.filter(function (p) { return new URL(p.url).pathname.indexOf("/app/") === 0; })[0];
    if (target.indexOf("tel:") === 0) {
      // Straight to the phone's dialler where the browser allows it; else the app's call page.
      return self.clients.openWindow(target).catch(function () { return self.clients.openWindow(inApp); });
    }
    if (open) {
      // Focus first, while the click still counts as the person's own gesture.
      return open.focus().then(function () { open.postMessage({ type: "burgernet-open", url: inApp }); });
    }
    return self.clients.openWindow(inApp);
  }));
});
