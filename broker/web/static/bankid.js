// Polls the broker about once a second for the BankID order's state: updates the message,
// swaps the QR image (rendered on the server; the QR secret never reaches the browser),
// goes on when the order completes, and cancels the order if the page is abandoned.
(function () {
  "use strict";
  var root = document.getElementById("bankid");
  if (!root) { return; }
  var statusUrl = root.getAttribute("data-status-url");
  var cancelUrl = root.getAttribute("data-cancel-url");
  var csrf = root.getAttribute("data-csrf");
  var qr = document.getElementById("qr");
  var text = document.getElementById("status");
  var cancelButton = document.getElementById("cancel");
  var finished = false;
  var leaving = false;

  function show(data) {
    if (data.message !== null && data.message !== undefined && text.textContent !== data.message) {
      text.textContent = data.message;
    }
    if (qr) {
      if (data.qr) { qr.src = data.qr; qr.hidden = false; } else { qr.hidden = true; }
    }
    if (data.status === "failed" && cancelButton) {
      cancelButton.textContent = document.documentElement.lang === "en" ? "Try again" : "Försök igen";
    }
  }

  function poll() {
    if (finished) { return; }
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        show(data);
        if (data.next) { finished = true; leaving = true; window.location.assign(data.next); return; }
        if (data.status === "failed" || data.status === "none") { finished = true; return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }

  document.getElementById("cancel-form").addEventListener("submit", function () { leaving = true; });
  // Opening the app (or, in the simulator, its page) is not abandoning the login.
  var launch = document.getElementById("launch");
  if (launch) { launch.addEventListener("click", function () { leaving = true; }); }
  window.addEventListener("pagehide", function () {
    if (finished || leaving || !navigator.sendBeacon) { return; }
    var body = new FormData();
    body.append("csrf", csrf);
    body.append("beacon", "1");
    navigator.sendBeacon(cancelUrl, body);
  });
  window.setTimeout(poll, 1000);
}());
