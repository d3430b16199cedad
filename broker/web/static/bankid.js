// The BankID pages' script. Without it everything still works: the wait page refreshes
// itself (meta refresh) and the server sends the browser on when the order completes.
//
// - Takes over from the meta refresh (window.stop() cancels it) and polls the status about
//   once a second: the message, the QR image (rendered on the server; the QR secret never
//   reaches the browser), and on to the next step when the order completes. Any other
//   change of state reloads the page, which the server renders as it now stands.
// - One tap from the device choice to the app on a phone: the "this device" button starts
//   the order in the background and follows the autostart link within the same tap (a
//   phone opens the app only from a tap). The page's address becomes the wait page's, so
//   coming back to the browser (the OS returning, the back button, a reload) shows the
//   order; the page never opens the app by itself.
// - Leaving the page does not cancel the order: a reload or a language switch keeps it.
(function () {
  "use strict";
  var request = window.BrokerPage && window.BrokerPage.request;
  if (!request) { return; }

  // -- one tap to the app --------------------------------------------------------------
  function launchFrom(button) {
    var form = button.form;
    var body = new FormData(form);
    body.append(button.name, button.value);
    var appIsPage = form.getAttribute("data-app-page") === "yes";
    button.disabled = true;
    request("POST", form.action, body, function (status, data) {
      if (status !== 200 || !data || !data.launch) {
        button.disabled = false;
        HTMLFormElement.prototype.submit.call(form);  // the server page says what happened
        return;
      }
      var toWait = function () { window.location.replace(data.wait); };
      if (window.history && window.history.replaceState) {
        window.history.replaceState(null, "", data.wait);
      }
      if (!appIsPage) {
        // The app opened over the browser: when the person comes back, show the order.
        document.addEventListener("visibilitychange", function () {
          if (document.visibilityState === "visible") { toWait(); }
        });
        window.addEventListener("pageshow", toWait);
        window.setTimeout(toWait, 5000);
      }
      window.location.href = data.launch;
    });
  }
  var buttons = document.querySelectorAll("button[data-launch]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (event) {
      event.preventDefault();
      launchFrom(event.currentTarget);
    });
  }

  // -- polling the order ---------------------------------------------------------------
  var root = document.getElementById("bankid");
  if (!root || root.getAttribute("data-poll") !== "yes") { return; }
  // This script keeps the page current now: cancel the meta refresh. window.stop() does,
  // once the page has loaded (called earlier it would also abort the load itself); the
  // element goes too, so the page no longer claims to refresh itself (WCAG 2.2.1, F41: the
  // timed reload is only for browsers without this script, where nothing else can).
  var refresh = document.querySelector("meta[http-equiv=refresh]");
  if (refresh) { refresh.parentNode.removeChild(refresh); }
  if (document.readyState === "complete") {
    window.stop();
  } else {
    window.addEventListener("load", function () { window.stop(); });
  }
  var statusUrl = root.getAttribute("data-status-url");
  var waitUrl = root.getAttribute("data-wait-url");
  var qr = document.getElementById("qr");
  var text = document.getElementById("status");
  var INSTALL = "https://install.bankid.com";

  function showMessage(message) {
    if (message === null || message === undefined || text.getAttribute("data-text") === message) {
      return;
    }
    text.setAttribute("data-text", message);
    text.textContent = "";
    var at = message.indexOf(INSTALL);
    if (at < 0) { text.textContent = message; return; }
    var link = document.createElement("a");
    link.href = INSTALL;
    link.textContent = INSTALL;
    text.appendChild(document.createTextNode(message.slice(0, at)));
    text.appendChild(link);
    text.appendChild(document.createTextNode(message.slice(at + INSTALL.length)));
  }

  function poll() {
    request("GET", statusUrl, null, function (status, data) {
      if (status === 0) { window.setTimeout(poll, 2000); return; }  // offline: try again
      if (!data) { window.location.replace(waitUrl); return; }  // e.g. expired: its page
      if (data.next) { window.location.assign(data.next); return; }
      if (data.status !== "pending") { window.location.replace(waitUrl); return; }
      showMessage(data.message);
      if (qr) {
        if (data.qr) { qr.src = data.qr; qr.hidden = false; } else { qr.hidden = true; }
      }
      window.setTimeout(poll, 1000);
    });
  }
  text.setAttribute("data-text", text.textContent);
  window.setTimeout(poll, 1000);
}());
