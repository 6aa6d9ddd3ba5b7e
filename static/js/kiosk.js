// Kiosk mode (the clinic's shared patient computer): a visible countdown to the automatic
// sign-out. The server enforces the idle limit itself (auth/views.py); this script only shows
// it, tells the server about activity (typing, touching) at most every 30 s, and signs out
// through the normal sign-out form when the time is up, so the session and cache are cleared.
(function () {
  "use strict";
  var timer = document.getElementById("kiosk-timer");
  if (!timer) {
    return;
  }
  var idleSeconds = parseInt(timer.getAttribute("data-idle-seconds"), 10) || 180;
  var pingUrl = timer.getAttribute("data-ping-url");
  var PING_EVERY_MS = 30000;
  var WARN_SECONDS = 60;
  var deadline = Date.now() + idleSeconds * 1000;
  var lastPing = Date.now();
  var signingOut = false;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function signOut() {
    if (signingOut) {
      return;
    }
    signingOut = true;
    var form = document.querySelector("form.signout");
    if (form) {
      form.submit();
    } else {
      window.location.reload();
    }
  }

  function render() {
    // Boosted navigation replaces the page body: find the (new) timer element every time.
    timer = document.getElementById("kiosk-timer") || timer;
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    var minutes = Math.floor(left / 60);
    var seconds = left % 60;
    timer.textContent =
      "Shared computer: you will be signed out in " +
      minutes + ":" + (seconds < 10 ? "0" : "") + seconds +
      (left <= WARN_SECONDS ? " — touch the screen or press a key to stay signed in" : "");
    timer.classList.toggle("warning", left <= WARN_SECONDS);
    if (left === 0) {
      signOut();
    }
  }

  function activity() {
    if (signingOut) {
      return;
    }
    deadline = Date.now() + idleSeconds * 1000;
    if (pingUrl && Date.now() - lastPing >= PING_EVERY_MS) {
      lastPing = Date.now();
      fetch(pingUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() },
      }).then(function (response) {
        if (response.status !== 204) {
          window.location.reload(); // the server already ended the session
        }
      });
    }
    render();
  }

  ["keydown", "pointerdown", "touchstart", "wheel"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true });
  });
  // A boosted navigation is a request too: the server counted it as activity.
  document.addEventListener("htmx:afterRequest", function () {
    lastPing = Date.now();
    deadline = Date.now() + idleSeconds * 1000;
    render();
  });
  render();
  window.setInterval(render, 1000);
})();
