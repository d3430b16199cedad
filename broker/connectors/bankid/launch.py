"""Which device and browser the person is on, and how the BankID app gets back to it.

BankID's current advice (reference §7, "Return to the RP") is a server-side `returnUrl` in
the order, carrying a nonce, checked together with the browser cookie on return. What the
app does with it differs per platform, and that decides what we send:

- **Android**: the OS returns to the app that launched BankID (the very browser, or the
  in-app browser) by itself. A `returnUrl` would instead be opened in the *default*
  browser, which may not be the one holding the login. So: none.
- **iOS Safari**: the app opens `returnUrl` in Safari (the tab reloads on return): the
  wait page with the nonce, from which the server sends the browser on.
- **iOS Chrome, Firefox, Edge**: the app opens an https `returnUrl` in Safari, i.e. in the
  wrong browser, whose missing cookie then fails the browser binding. These browsers
  register URL schemes that open a URL in themselves: `googlechromes://<host><path>`,
  `firefox://open-url?url=<url>`, `microsoft-edge-https://<host><path>`. ActiveLogin
  (BankIdLauncher) and Sweden Connect's bankid-saml-idp detect these browsers from the
  user agent (`CriOS`, `FxiOS`, `EdgiOS`) for the same reason. ActiveLogin sends the bare
  scheme for Chrome and Firefox (the browser reopens its last tab); we send the scheme
  with our nonce-bound wait URL, so the browser opens the page that finishes the login
  even when iOS has discarded the old tab meanwhile (a second tab of the same browser
  shares its cookies, so the binding holds).
- **Other iOS browsers and in-app browsers** (Facebook, Instagram, LinkedIn, the Google
  app, … - no `Safari/` token, or a browser we cannot reopen): none. An https URL would
  land in Safari; with no `returnUrl` (and `redirect=null` in the launch link) the app
  stays put and the person goes back with iOS's "◀ app" breadcrumb to the page, which is
  still polling. BankID's guidance for unknown browsers is the same `null`.
- **Computers**: none; the BankID Security App is a separate window and the page polls.

The page is never what launches the app on load: only the person's tap does (the
"endless loop" ActiveLogin once had came from a page that autostarted the app again
when the person came back to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

Platform = Literal["ios", "android", "desktop"]
BrowserName = Literal["safari", "chrome", "firefox", "edge", "other"]

_IOS = re.compile(r"iPhone|iPad|iPod", re.IGNORECASE)
_ANDROID = re.compile(r"Android", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)
_IOS_BROWSERS: tuple[tuple[str, BrowserName], ...] = (
    ("CriOS/", "chrome"), ("FxiOS/", "firefox"), ("EdgiOS/", "edge"))
# In-app browsers that still say "Safari/" (most say nothing): not Safari, cannot be reopened.
_IN_APP = re.compile(r"FBAN|FBAV|FB_IAB|Instagram|LinkedInApp|GSA/|Line/|Snapchat|Twitter|"
                     r"MicroMessenger|OPT/|OPiOS|YaBrowser|DuckDuckGo", re.IGNORECASE)


@dataclass(frozen=True)
class Browser:
    platform: Platform
    name: BrowserName

    @property
    def mobile(self) -> bool:
        return self.platform != "desktop"


def detect(user_agent: str) -> Browser:
    """The person's platform and, on iOS, which browser (see the module text for why).

    iPadOS Safari asks for desktop pages with a Mac user agent; it is then a computer
    here (QR first, and "BankID på den här datorn" opens the app through `bankid:///`).
    """
    ua = user_agent or ""
    if _IOS.search(ua):
        for token, name in _IOS_BROWSERS:
            if token in ua:
                return Browser("ios", name)
        if "Safari/" in ua and "Version/" in ua and not _IN_APP.search(ua):
            return Browser("ios", "safari")
        return Browser("ios", "other")
    if _ANDROID.search(ua):
        return Browser("android", "other")
    if _MOBILE.search(ua):
        return Browser("android", "other")  # another phone OS: behave as Android does
    return Browser("desktop", "other")


def return_url(browser: Browser, url: str) -> str | None:
    """What to send as the order's `returnUrl` for `url` (our wait page with the nonce)."""
    if browser.platform != "ios":
        return None
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3:]  # host[:port]/path?query, without "https://"
    secure = parts.scheme == "https"
    if browser.name == "safari":
        return url
    if browser.name == "chrome":
        return ("googlechromes://" if secure else "googlechrome://") + rest
    if browser.name == "firefox":
        return "firefox://open-url?url=" + quote(url, safe="")
    if browser.name == "edge":
        return ("microsoft-edge-https://" if secure else "microsoft-edge-http://") + rest
    return None


def launch_url(browser: Browser, token: str, app_base: str | None = None) -> str:
    """The autostart link. `redirect=null` always: the order's `returnUrl` decides the
    return (it overrides the deprecated launch-URL `redirect`, reference §7)."""
    if app_base:  # the simulator's app page stands in for the app
        return f"{app_base}?autostarttoken={token}&redirect=null"
    if browser.mobile:
        return f"https://app.bankid.com/?autostarttoken={token}&redirect=null"
    return f"bankid:///?autostarttoken={token}&redirect=null"
