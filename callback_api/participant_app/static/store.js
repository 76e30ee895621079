/* What the app keeps on the device, in IndexedDB (the page and the service worker share it).

   places    {slot: "current"|"home"|"work", lat, lon, label, how: "gps"|"postcode"|"map", at}
             the only copy of the participant's places: they are never sent anywhere.
   settings  {key, value}: lang, endpoint (this device's push subscription, the reply channel)
   shown     {action_id, kind, at}: the actions this device showed an alert for (updates and
             the result are shown only for these)
   messages  {id, kind, action_id, title, body, buttons, at, ...}: the last notifications shown,
             for the app's own list (a notification can be swiped away unread)
   sent      {id, action_id, at}: the sightings sent from this device */
(function (scope) {
  "use strict";

  var NAME = "burgernet";
  var VERSION = 1;
  var KEEP_MESSAGES = 30;

  function request(r) {
    return new Promise(function (resolve, reject) {
      r.onsuccess = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
    });
  }

  function open() {
    var opening = indexedDB.open(NAME, VERSION);
    opening.onupgradeneeded = function () {
      var db = opening.result;
      db.createObjectStore("places", { keyPath: "slot" });
      db.createObjectStore("settings", { keyPath: "key" });
      db.createObjectStore("shown", { keyPath: "action_id" });
      db.createObjectStore("messages", { keyPath: "id", autoIncrement: true });
      db.createObjectStore("sent", { keyPath: "id" });
    };
    return request(opening);
  }

  /* Run ``work(store)`` (which returns a request's promise) in one transaction; resolves
     when the transaction has committed. */
  function using(name, mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(name, mode);
        var value;
        transaction.oncomplete = function () { db.close(); resolve(value); };
        transaction.onerror = function () { db.close(); reject(transaction.error); };
        transaction.onabort = function () { db.close(); reject(transaction.error); };
        Promise.resolve(work(transaction.objectStore(name))).then(function (result) { value = result; });
      });
    });
  }

  function all(name) { return using(name, "readonly", function (s) { return request(s.getAll()); }); }
  function put(name, value) { return using(name, "readwrite", function (s) { return request(s.put(value)); }); }

  scope.BurgernetStore = {
    places: function () { return all("places"); },
    savePlace: function (place) { return put("places", place); },
    removePlace: function (slot) {
      return using("places", "readwrite", function (s) { return request(s.delete(slot)); });
    },
    setting: function (key) {
      return using("settings", "readonly", function (s) { return request(s.get(key)); })
        .then(function (row) { return row ? row.value : undefined; });
    },
    setSetting: function (key, value) { return put("settings", { key: key, value: value }); },
    shownIds: function () {
      return all("shown").then(function (rows) { return rows.map(function (r) { return r.action_id; }); });
    },
    markShown: function (actionId, kind) {
      return put("shown", { action_id: actionId, kind: kind, at: new Date().toISOString() });
    },
    messages: function () {
      return all("messages").then(function (rows) { return rows.reverse(); });  // newest first
    },
    addMessage: function (message) {
      return using("messages", "readwrite", function (s) {
        return request(s.add(message)).then(function () { return request(s.getAllKeys()); })
          .then(function (keys) {
            keys.slice(0, Math.max(0, keys.length - KEEP_MESSAGES)).forEach(function (k) { s.delete(k); });
          });
      });
    },
    sent: function () { return all("sent"); },
    addSent: function (row) { return put("sent", row); }
  };
})(self);
