"""The HTTP source against a real HTTP service (Starlette under uvicorn)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from authz_support import ANNA_HSA, ANNA_PNR, FakeClock, Service, bankid, siths

from broker.authz import AuthorizationSourceError, open_source
from broker.authz.http import HttpSource
from broker.authz.settings import AuthorizationSettings

ANNA = {
    "id": "u-anna",
    "personal_identity_number": ANNA_PNR,
    "hsa_id": ANNA_HSA,
    "given_name": "Anna",
    "family_name": "Andersson",
    "assignments": [
        {"role": {"code": "ssk", "name": "Sjuksköterska"},
         "unit": {"id": "U1", "name": "Hemsjukvården Norr"},
         "organization": {"id": "2120001234", "name": "Exempel kommun"},
         "clients": ["lifecare"], "valid_from": "2024-01-01"},
    ],
}


def source(service: Service, clock: FakeClock | None = None, **options: object) -> HttpSource:
    opts: dict = {"timeout": 1.0, "cache_ttl": 60.0, **options}
    return HttpSource(service.url, clock=clock or FakeClock(), **opts)


async def test_contract_lookups_and_headers(http_service: Service) -> None:
    http_service.users = [ANNA]
    src = open_source(
        AuthorizationSettings(source="http", url=http_service.url, bearer_token="s3cret",
                              headers={"X-Api-Key": "k"}),
        Path.cwd(),
    )
    try:
        by_pnr = await src.find_user(bankid())
        assert by_pnr is not None and by_pnr.id == "u-anna"
        assert by_pnr.assignments[0].role.id == "ssk"
        by_hsa = await src.find_user(siths(ANNA_HSA.lower()))
        assert by_hsa.id == by_pnr.id  # same person by BankID or SITHS
        assert await src.find_user(bankid("198112289874")) is None  # 404: unknown
        await src.ping()
    finally:
        await src.aclose()
    bodies = [body for body, _ in http_service.requests]
    assert bodies[0] == {"personal_identity_number": ANNA_PNR, "hsa_id": None}
    assert bodies[1] == {"personal_identity_number": None, "hsa_id": ANNA_HSA}
    assert bodies[-1] == {"ping": True}
    headers = http_service.requests[0][1]
    assert headers["authorization"] == "Bearer s3cret" and headers["x-api-key"] == "k"


async def test_answers_are_cached_for_cache_ttl(http_service: Service) -> None:
    http_service.users = [ANNA]
    clock = FakeClock()
    src = source(http_service, clock, cache_ttl=30)
    try:
        assert (await src.find_user(bankid())).id == "u-anna"
        assert (await src.find_user(bankid())).id == "u-anna"
        assert (await src.get_user("u-anna")).id == "u-anna"  # filled by the identity lookup
        assert await src.find_user(bankid("198112289874")) is None
        assert await src.find_user(bankid("198112289874")) is None  # "unknown" is cached too
        assert http_service.lookups() == 2
        clock.now += 31
        http_service.users = []  # withdrawn upstream: seen once the cache expires
        assert await src.find_user(bankid()) is None
        assert http_service.lookups() == 3
    finally:
        await src.aclose()


async def test_timeout_fails_closed(http_service: Service) -> None:
    http_service.users = [ANNA]
    http_service.delay = 2.0
    src = source(http_service, timeout=0.3)
    try:
        with pytest.raises(AuthorizationSourceError, match=r"did not answer within 0\.3 s"):
            await src.find_user(bankid())
    finally:
        await src.aclose()


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_errors_fail_closed(http_service: Service, status: int) -> None:
    http_service.status = status
    src = source(http_service)
    try:
        with pytest.raises(AuthorizationSourceError, match=f"HTTP {status}"):
            await src.find_user(bankid())
        with pytest.raises(AuthorizationSourceError):
            await src.ping()
    finally:
        await src.aclose()


async def test_fail_closed_ignores_the_cache_once_expired(http_service: Service) -> None:
    http_service.users = [ANNA]
    clock = FakeClock()
    src = source(http_service, clock, cache_ttl=10, fail_closed=True, stale_ttl=600)
    try:
        assert (await src.find_user(bankid())).id == "u-anna"
        clock.now += 11
        http_service.status = 500
        with pytest.raises(AuthorizationSourceError):
            await src.find_user(bankid())
    finally:
        await src.aclose()


async def test_fail_open_only_serves_stale_answers(
    http_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    http_service.users = [ANNA]
    clock = FakeClock()
    src = source(http_service, clock, cache_ttl=10, fail_closed=False, stale_ttl=100)
    try:
        assert (await src.find_user(bankid())).id == "u-anna"
        http_service.status = 503
        clock.now += 50
        with caplog.at_level(logging.WARNING):
            stale = await src.find_user(bankid())
        assert stale is not None and stale.id == "u-anna"
        assert "serving an answer" in caplog.text and ANNA_PNR not in caplog.text
        # Never asked before: nothing to serve, so no access.
        with pytest.raises(AuthorizationSourceError):
            await src.find_user(siths("SE2321000016-9999"))
        # Too old: fails like fail_closed.
        clock.now += 61
        with pytest.raises(AuthorizationSourceError):
            await src.find_user(bankid())
    finally:
        await src.aclose()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({**ANNA, "personal_identity_number": "198112289874", "hsa_id": None},
         "different user than was asked for"),
        ({**ANNA, "assignments": [{"role": {"code": "x"}}]}, "not a valid user"),
        ({**ANNA, "personal_identity_number": "199001012384"}, "not a valid user"),
        (["not", "an", "object"], "not a valid user"),
    ],
)
async def test_bad_answers_fail_closed(http_service: Service, answer: object,
                                       message: str) -> None:
    http_service.override = answer
    src = source(http_service)
    try:
        with pytest.raises(AuthorizationSourceError, match=message) as err:
            await src.find_user(bankid())
        assert "199001012384" not in str(err.value)
    finally:
        await src.aclose()


async def test_get_user_must_answer_the_id_asked_for(http_service: Service) -> None:
    http_service.override = ANNA
    src = source(http_service)
    try:
        assert (await src.get_user("u-anna")).id == "u-anna"
        with pytest.raises(AuthorizationSourceError, match="different user"):
            await src.get_user("u-bo")
    finally:
        await src.aclose()
