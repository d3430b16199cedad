// Shared by the login pages: a request helper that every browser has (XMLHttpRequest, no
// fetch: the OIDF conformance suite's HtmlUnit has none), and the warning shown two
// minutes before the login expires, with a button that asks for more time (WCAG 2.2.1).
(function () {
  "use strict";

  // method, url, body (a FormData, or null), done(status, json-or-null, text)
  function request(method, url, body, done) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      done(xhr.status, data, xhr.responseText);
    };
    xhr.send(body);
  }
  window.BrokerPage = { request: request };

  var box = document.getElementById("expiry");
  if (!box) { return; }
  var left = parseInt(box.getAttribute("data-expires-in"), 10);
  if (isNaN(left)) { return; }
  var WARN_SECONDS = 120;
  var deadline = Date.now() + left * 1000;
  var shown = false;

  function show() {
    shown = true;
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = box.getAttribute("data-warning");
    var button = document.createElement("button");
    button.type = "button";
    button.id = "expiry-extend";
    button.textContent = box.getAttribute("data-extend");
    button.addEventListener("click", extend);
    box.appendChild(p);
    box.appendChild(button);
    box.className = "expiry warning";
  }

  function extend() {
    var body = new FormData();
    body.append("csrf", box.getAttribute("data-csrf"));
    request("POST", box.getAttribute("data-extend-url"), body, function (status, data) {
      if (status !== 200 || !data) { window.location.assign(box.getAttribute("data-expired-url")); return; }
      deadline = Date.now() + data.expires_in * 1000;
      shown = false;
      box.textContent = box.getAttribute("data-extended");
      box.className = "expiry";
    });
  }

  window.setInterval(function () {
    var remaining = (deadline - Date.now()) / 1000;
    if (remaining <= 0) {
      // The server shows what is left: the expired page with the way back to the service.
      window.location.assign(box.getAttribute("data-expired-url"));
    } else if (remaining <= WARN_SECONDS && !shown) {
      show();
    }
  }, 1000);
}());
