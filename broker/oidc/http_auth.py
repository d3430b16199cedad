"""Client credentials in the Authorization header (RFC 7617 Basic, RFC 6749 §2.3.1), checked
before Authlib reads them.

Authlib splits the header without looking: `Basic ` or `Bearer ` with nothing after the
scheme, or Basic credentials that are not UTF-8, raised inside it (a 500 with a stack trace).
A client that sent such a header tried to authenticate and failed: `invalid_client`, 401.
"""

from __future__ import annotations

import base64
import binascii

from authlib.oauth2.rfc6749.errors import InvalidClientError


def check_client_authorization(header: str | None) -> None:
    """Raise `InvalidClientError` (401, WWW-Authenticate: Basic) for a header that names a
    scheme without credentials, or Basic credentials that are not base64 of UTF-8 text.
    Other schemes with a value are left to Authlib (it ignores them)."""
    if header is None:
        return
    parts = header.split(None, 1)
    if len(parts) != 2:
        raise InvalidClientError("the Authorization header holds no credentials", status_code=401)
    scheme, credentials = parts
    if scheme.lower() != "basic":
        return
    try:
        text = base64.b64decode(credentials.strip()).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClientError("the Basic credentials are not base64 of UTF-8 text",
                                 status_code=401) from None
    if ":" not in text:
        raise InvalidClientError("the Basic credentials must be client_id:client_secret",
                                 status_code=401)
