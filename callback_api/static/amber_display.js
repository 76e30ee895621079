/* The AMBER Alert display: fetch the page again every few seconds and replace what it shows,
   only when it changed. No reload, so a reader keeps their place (a meta refresh would not). */
"use strict";
(function () {
  var main = document.getElementById("amber");
  var seconds = parseInt(main.dataset.pollSeconds, 10) || 30;
  setInterval(function () {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("amber");
        if (fresh && fresh.innerHTML !== main.innerHTML) { main.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }, seconds * 1000);
})();
