"""One call from a presented certificate to an Identity: validate, check revocation, map.

This is what the SITHS login page on the mTLS host calls::

    auth = SithsAuthenticator(settings.connectors.siths, ScopedStore(store, "siths"),
                              trust=TrustAnchors.load(settings.path(siths.trust.ca_bundle)))
    presented = auth.certificate(request.scope)         # None: no certificate
    identity = await auth.authenticate(presented)        # or raises SithsLoginFailure

Ordinary logs get the issuer, serial and fingerprint; never the subject (the Person ID
certificate's subject holds the personnummer).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ...store.scoped import ScopedStore
from ..base import Identity
from .identity import fingerprint, identity_from_certificate
from .intake import PresentedCertificate, presented_certificate
from .revocation import RevocationChecker, RevocationStatus
from .settings import SithsSettings
from .validation import CertificateValidator, Outcome, SithsLoginFailure, TrustAnchors

log = logging.getLogger(__name__)


class SithsAuthenticator:
    """Validation + revocation + identity for SITHS certificates, for one settings block."""

    def __init__(
        self,
        settings: SithsSettings,
        store: ScopedStore,
        *,
        trust: TrustAnchors | None = None,
        base_dir: Path | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if trust is None:
            path = Path(settings.trust.ca_bundle)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            trust = TrustAnchors.load(path)
        self.settings = settings
        self._clock = clock
        self.validator = CertificateValidator(trust, settings.trust)
        self.revocation = RevocationChecker(settings.revocation, store, http=http, clock=clock)

    def certificate(self, scope: Mapping[str, Any]) -> PresentedCertificate | None:
        """The certificate of this request (header from a trusted proxy, or TLS)."""
        return presented_certificate(scope, self.settings)

    async def authenticate(self, presented: PresentedCertificate | None) -> Identity:
        """The Identity, or raise SithsLoginFailure (a LoginFailure) with the outcome code."""
        now = self._clock()
        validated = self.validator.validate(presented, dt.datetime.fromtimestamp(now, dt.UTC))
        leaf = validated.leaf
        ref = f"issuer={validated.issuer_name!r} serial={leaf.serial_number:x} sha256={fingerprint(leaf)}"
        status = await self.revocation.check(leaf, validated.issuer, validated.issuer_name)
        if status.status == "revoked":
            raise SithsLoginFailure(Outcome.REVOKED, f"{ref}: revoked ({status.source}, {status.reason})")
        if status.status == "unknown":
            raise SithsLoginFailure(Outcome.REVOCATION_UNKNOWN, f"{ref}: responder does not know it")
        if status.status == "unavailable":
            if not self.settings.revocation.soft_fail:
                raise SithsLoginFailure(Outcome.REVOCATION_UNKNOWN, f"{ref}: {status.detail}")
            log.warning("SITHS revocation unavailable, accepted by soft_fail: %s", ref)
            status = RevocationStatus("unavailable", "soft-fail", status.checked_at,
                                      detail=status.detail)
        identity = identity_from_certificate(validated, status, auth_time=int(now))
        log.info("SITHS certificate accepted: %s loa=%s revocation=%s", ref, validated.level,
                 status.source)
        return identity

    async def aclose(self) -> None:
        await self.revocation.aclose()
