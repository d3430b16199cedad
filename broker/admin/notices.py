"""The e-mails the admin app sends, from the text templates in templates/mail/.

Each template's first line is the subject, the rest the body; every notice exists in
Swedish and English (`<name>.sv.txt`, `<name>.en.txt`) and is written in the recipient's
language when known (the requester's page language), else Swedish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..mail import Mail

HERE = Path(__file__).parent
LOCALES = ("sv", "en")


class Notices:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates" / "mail")),
                               autoescape=False, undefined=StrictUndefined,  # noqa: S701 (plain text)
                               keep_trailing_newline=True)

    def link(self, path: str) -> str:
        return f"{self.issuer}/admin{path}"

    def render(self, name: str, locale: str, to: str, **values: Any) -> Mail:
        locale = locale if locale in LOCALES else "sv"
        text = self.env.get_template(f"{name}.{locale}.txt").render(**values)
        subject, _, body = text.partition("\n")
        return Mail(to=to, subject=subject.strip(), body=body.lstrip("\n"))
