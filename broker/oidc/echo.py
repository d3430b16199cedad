"""What of a request may be repeated back in an error, and how.

RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in `error_description` (Authlib raises
on anything else, which was a 500), and a parameter name is the caller's text: a NUL, a
right-to-left override (U+202E) or a thousand characters of it have no place in an answer or
on a page. Names that look like parameter names are echoed; others are only counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
MAX_NAMED = 3


def parameter_names(names: Iterable[str]) -> str:
    """`names` for an error description: at most three plain ones, the rest counted."""
    unique = sorted(set(names))
    shown = [n for n in unique if _PLAIN_NAME.match(n)][:MAX_NAMED]
    hidden = len(unique) - len(shown)
    if not shown:
        return "a parameter" if hidden == 1 else f"{hidden} parameters"
    text = ", ".join(shown)
    return text if not hidden else f"{text} and {hidden} more"
