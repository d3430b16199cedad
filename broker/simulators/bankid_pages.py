"""The simulated BankID app as a web page: a person scans, opens, approves or refuses.

Plain HTML forms rendered here (no template engine, nothing from third parties); the
stylesheet and the small refresh script are served as files so the page passes a strict
Content-Security-Policy (no inline script or style).
"""

from __future__ import annotations

from html import escape
from typing import Any

from .bankid_engine import SimOrder
from .bankid_settings import TestPerson

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

CSS = """\
body{font-family:system-ui,sans-serif;margin:0;background:#f4f1ec;color:#1d1d1b}
header{background:#193e4f;color:#fff;padding:.8rem 1.2rem}
header h1{margin:0;font-size:1.2rem}
main{max-width:60rem;margin:0 auto;padding:1rem}
section{background:#fff;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
h2{font-size:1.05rem;margin:.2rem 0 .8rem}
textarea,input,select{font:inherit;padding:.35rem;border:1px solid #999;border-radius:.3rem}
textarea{width:100%;box-sizing:border-box}
button{font:inherit;padding:.4rem .8rem;margin:.2rem .2rem .2rem 0;border:0;border-radius:.3rem;
background:#193e4f;color:#fff;cursor:pointer}
button.secondary{background:#6b6b6b}
button.danger{background:#a4262c}
.order{border-top:1px solid #ddd;padding:.6rem 0}
.meta{font-size:.85rem;color:#555}
.text{white-space:pre-wrap;background:#f4f1ec;padding:.4rem;border-radius:.3rem}
.flash{background:#fff4ce;padding:.6rem 1rem;border-radius:.3rem;margin-bottom:1rem}
.error{background:#fde7e9}
code{word-break:break-all}
"""

# Reload the order list every 3 s, but never while the person is typing or choosing.
JS = """\
(function () {
  var busy = false;
  document.addEventListener('focusin', function () { busy = true; });
  document.addEventListener('focusout', function () { busy = false; });
  if (document.body.getAttribute('data-refresh') !== 'yes') { return; }
  window.setInterval(function () {
    var typed = Array.prototype.some.call(document.querySelectorAll('textarea,input[type=text]'),
      function (el) { return el.value !== ''; });
    if (!busy && !typed) { window.location.reload(); }
  }, 3000);
}());
"""


def _persons(persons: tuple[TestPerson, ...], selected: str | None = None,
             name: str = "personalNumber") -> str:
    options = "".join(
        f'<option value="{escape(p.personal_number)}"'
        f'{" selected" if p.personal_number == selected else ""}>'
        f"{escape(p.name)} ({escape(p.personal_number)})</option>"
        for p in persons
    )
    return f'<select name="{name}" aria-label="Test person">{options}</select>'


def _order_actions(base: str, order: SimOrder, persons: tuple[TestPerson, ...],
                   redirect: str | None) -> str:
    ref = escape(order.order_ref)
    chosen = order.person.personal_number if order.person else order.required_pno
    hidden = f'<input type="hidden" name="orderRef" value="{ref}">'
    if redirect:
        hidden += f'<input type="hidden" name="redirect" value="{escape(redirect)}">'
    buttons = [
        '<button name="action" value="approve">Identify / sign (approve)</button>',
        '<button name="action" value="cancel" class="secondary">Cancel</button>',
        '<button name="action" value="block" class="danger">Blocked BankID (certificateErr)</button>',
        '<button name="action" value="oldapp" class="secondary">App too old</button>',
    ]
    if order.hint_code in ("userCallConfirm", "userMrtd"):
        label = "Confirm call" if order.hint_code == "userCallConfirm" else "Scan ID document"
        buttons.insert(0, f'<button name="action" value="advance">{label}</button>')
    if order.phone:
        buttons.insert(2, '<button name="action" value="decline" class="secondary">'
                          "Not in a call (decline)</button>")
    return (
        f'<form method="post" action="{base}/app/action">{hidden}'
        f"{_persons(persons, chosen)} {''.join(buttons)}</form>"
    )


def _order_block(base: str, order: SimOrder, now: float, persons: tuple[TestPerson, ...],
                 redirect: str | None = None) -> str:
    info = order.summary(now)
    text = info["userVisibleData"]
    lines = [
        '<div class="order">',
        f"<div><strong>{escape(order.kind)}</strong> <code>{escape(order.order_ref)}</code></div>",
        f'<div class="meta">{escape(str(info["hintCode"] or info["status"]))} · '
        f"{info['age']:.0f} s old · via {escape(str(order.via or 'not picked up'))}"
        + (f" · only for {escape(order.required_pno)}" if order.required_pno else "")
        + (" · ID document required" if info["mrtd"] else "")
        + "</div>",
    ]
    if text:
        lines.append(f'<div class="text">{escape(text)}</div>')
    if order.live:
        lines.append(_order_actions(base, order, persons, redirect))
    lines.append("</div>")
    return "".join(lines)


def render_page(base: str, *, orders: list[SimOrder], now: float,
                persons: tuple[TestPerson, ...], flash: str | None = None,
                error: bool = False, focus: SimOrder | None = None,
                redirect: str | None = None) -> str:
    """The app page; `focus` is the order opened with an autostart token."""
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>BankID simulator – test app</title>",
        f'<link rel="stylesheet" href="{base}/app/static/app.css">',
        f'<script src="{base}/app/static/app.js" defer></script></head>',
        f'<body data-refresh="{"no" if focus else "yes"}"><header>',
        "<h1>BankID simulator – test app</h1></header><main>",
    ]
    if flash:
        parts.append(f'<div class="flash{" error" if error else ""}" role="status">'
                     f"{escape(flash)}</div>")
    if focus is not None:
        parts.append("<section><h2>Order opened on this device</h2>")
        parts.append(_order_block(base, focus, now, persons, redirect))
        parts.append(f'<p><a href="{base}/app">All orders</a></p></section>')
    else:
        parts.append(
            f'<section><h2>Scan a QR code</h2><form method="post" action="{base}/app/action">'
            '<input type="hidden" name="action" value="scan">'
            '<label for="qr">QR code contents (bankid.…)</label>'
            '<textarea id="qr" name="qr" rows="2" required></textarea>'
            f"<p>{_persons(persons)} <button>Scan</button></p></form></section>"
            f'<section><h2>Open with an autostart token</h2><form method="get" action="{base}/app">'
            '<input type="text" name="autostarttoken" aria-label="Autostart token" size="40" required>'
            " <button>Open</button></form></section>"
        )
        live = [o for o in orders if o.live]
        parts.append(f"<section><h2>Pending orders ({len(live)})</h2>")
        parts.extend(_order_block(base, o, now, persons) for o in live)
        if not live:
            parts.append('<p class="meta">No pending orders.</p>')
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "".join(parts)


def order_summaries(orders: list[SimOrder], now: float) -> list[dict[str, Any]]:
    return [o.summary(now) for o in orders]
