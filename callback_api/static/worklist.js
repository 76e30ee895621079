"use strict";
/* The call-back worklist: every step (claim, call back, done, release) is sent with fetch and the
   list redrawn from the server; other centralists' steps arrive over the live stream
   ("worklist_changed"), as do new tips and calls that found nobody. */
(function () {
  var list = document.getElementById("worklist");
  if (!list) { return; }
  var announce = document.getElementById("worklist-announce");
  var timer = null;

  function say(text, isError) {
    announce.textContent = text;
    var shown = document.getElementById("worklist-message");
    if (!shown) {
      shown = document.createElement("p");
      shown.id = "worklist-message";
      list.parentNode.insertBefore(shown, list);
    }
    shown.className = "flash " + (isError ? "error" : "success");
    shown.setAttribute("role", isError ? "alert" : "status");
    shown.textContent = text;
  }

  function refresh() {
    timer = null;
    fetch(list.dataset.source, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) {
      var focused = document.activeElement && document.activeElement.id;
      // A result chosen or a note typed but not sent yet survives the redraw.
      var typed = {};
      list.querySelectorAll("select[id], input[id]:not([type=hidden])").forEach(function (field) {
        typed[field.id] = field.value;
      });
      list.innerHTML = html;  // rendered and escaped by the server (worklist/_items.html)
      Object.keys(typed).forEach(function (id) {
        var field = document.getElementById(id);
        if (field) { field.value = typed[id]; }
      });
      if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
    }).catch(function () { /* the next event or step tries again */ });
  }

  function soon() { if (timer === null) { timer = setTimeout(refresh, 150); } }

  list.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset.step) { return; }
    e.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" }
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (answer) {
      say(answer.ok ? answer.body.message : answer.body.error, !answer.ok);
      refresh();
    }).catch(function () {
      say(list.dataset.failed || "The panel could not be reached; try again.", true);
      if (button) { button.disabled = false; }
    });
  });

  if (window.BurgernetLive) {
    ["worklist_changed", "tip", "call_ended"].forEach(function (type) { BurgernetLive.on(type, soon); });
    BurgernetLive.onOpen(soon);
  }
})();
