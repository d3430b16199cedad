"""Sending e-mail over SMTP (`smtp.*` in the config) with aiosmtplib.

The admin app tells people what happened to a request and reminds managers of reviews.
Mail is a notification, never the record: the database holds the state, so a mail server
that is down is logged and reported to the person who acted, and changes nothing.

    smtp:
      host: smtp.example.kommun.se
      port: 587
      security: starttls            # starttls (port 587) | tls (implicit TLS, port 465) | none
      username: ${SMTP_USER}        # optional; credentials from the environment
      password: ${SMTP_PASSWORD}
      from_address: behorighet@example.kommun.se
      from_name: Behörighetsadministration
      timeout: 10
      ca_bundle: smtp-ca.pem        # optional; the system's CAs otherwise

`security: none` sends in clear and is allowed only towards localhost (a local relay).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

_ADDRESS = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(None, min_length=1)
    password: str | None = Field(None, repr=False)
    from_address: str = Field(pattern=_ADDRESS)
    from_name: str | None = None
    timeout: float = Field(10.0, gt=0, le=120)
    # A PEM bundle to trust for the server's certificate (relative to the config file).
    ca_bundle: str | None = None

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and ("\n" in v or "\r" in v):
            raise ValueError("must be one line")
        return v

    @model_validator(mode="after")
    def _safe(self) -> SmtpSettings:
        if self.security == "none" and not _is_loopback(self.host):
            raise ValueError("security: none sends passwords and personal data in clear; it is "
                             "only allowed for a relay on localhost (use starttls or tls)")
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together (or neither)")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Mail:
    """One message to one recipient, plain text."""

    to: str
    subject: str
    body: str


class MailError(Exception):
    """The message was not accepted by the mail server; the text says why (no secrets)."""


class Mailer:
    """Sends `Mail` through the configured server; one connection per message (mail is rare)."""

    def __init__(self, settings: SmtpSettings, base_dir: Path | None = None) -> None:
        self.settings = settings
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            cafile = None
            if settings.ca_bundle:
                bundle = Path(settings.ca_bundle)
                cafile = str(bundle if bundle.is_absolute() or base_dir is None
                             else base_dir / bundle)
            self._tls = ssl.create_default_context(cafile=cafile)

    def message(self, mail: Mail) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = formataddr((s.from_name, s.from_address)) if s.from_name else s.from_address
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = make_msgid(domain=s.from_address.rsplit("@", 1)[1])
        msg.set_content(mail.body)
        return msg

    async def send(self, mail: Mail) -> None:
        import aiosmtplib

        s = self.settings
        try:
            await aiosmtplib.send(
                self.message(mail), hostname=s.host, port=s.port, username=s.username,
                password=s.password, use_tls=s.security == "tls",
                start_tls=True if s.security == "starttls" else False,
                tls_context=self._tls, timeout=s.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail to the server %s:%s failed: %s", s.host, s.port,
                        type(exc).__name__)
            raise MailError(f"the mail server did not accept the message ({type(exc).__name__})"
                            ) from None
