"""BankID unavailable, rate-limiting us or timing out (issue 12 point 4): the person gets
BankID's message on a retryable 503, the log an error line with BankID's code, and the
metrics a count by kind. Faults come from the embedded simulator's fault injection."""

import logging
import re

import httpx
import pytest

from tests.bankidweb.conftest import BankIDBroker, start_broker
from tests.bankidweb.test_bankid_pages import begin, order, poll_until
from tests.support.server import serve


@pytest.fixture(scope="module")
def faulty(redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    issuer, port, app = start_broker(
        redis, tmp, maintenance_retries=0, collect_interval=1,
        timeouts={"connect": 0.5, "read": 0.5, "total": 0.5},
        rate_limits={"starts_per_ip_per_minute": 10_000})
    with serve(app, port):
        yield BankIDBroker(issuer, app, tmp)


def inject(browser, **fault):
    assert browser.post("/bankid-simulator/control/faults", json=fault).status_code == 200


def scrape(bb) -> str:
    return bb.broker.metrics.exposition().decode()


def counted(bb, metric: str, label: str, value: str) -> float:
    m = re.search(rf'{metric}{{{label}="{value}"}} ([0-9.]+)', scrape(bb))
    return float(m.group(1)) if m else 0.0


@pytest.mark.parametrize(("fault", "code", "kind"), [
    ({"status": 503}, "maintenance", "unavailable"),
    ({"status": 500}, "internalError", "unavailable"),
    ({"status": 429}, "tooManyRequests", "rate_limited"),
    ({"delay": 3}, "timeout", "timeout"),
])
def test_a_failed_start_is_a_503_with_bankids_message(faulty, caplog, fault, code, kind):
    bb = faulty
    caplog.set_level(logging.INFO, logger="broker.bankid")
    before = counted(bb, "broker_errors_total", "kind", f"bankid_{kind}")
    with httpx.Client(base_url=bb.issuer, timeout=10) as browser:
        inject(browser, endpoint="auth", times=None, **fault)
        try:
            rp = bb.rp()
            page = rp.authorize(browser)  # a computer starts the QR order at once
        finally:
            browser.delete("/bankid-simulator/control/faults")
        assert page.status_code == 503, page.text[:300]
        assert "Internt tekniskt fel. Försök igen." in page.text  # RFA5
        assert page.headers["retry-after"].isdigit()
        assert "Mobilt BankID" in page.text  # and the way on: try again, either device
        # Once BankID is back, the same page's button works.
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        txn_id = re.search(r"/login/bankid/([^/]+)/start", page.text).group(1)
        again = browser.post(f"/login/bankid/{txn_id}/start", data={"csrf": csrf, "device": "other"})
        assert again.status_code == 303
    errors = [r for r in caplog.records if r.name == "broker.bankid" and r.levelno == logging.ERROR]
    assert [getattr(r, "error_code", None) for r in errors] == [code]
    assert getattr(errors[0], "kind", None) == kind
    assert counted(bb, "broker_errors_total", "kind", f"bankid_{kind}") == before + 1
    assert counted(bb, "broker_bankid_error_codes_total", "error_code", code) >= 1


def test_rate_limited_start_waits_as_long_as_bankid_says(faulty):
    with httpx.Client(base_url=faulty.issuer) as browser:
        inject(browser, endpoint="auth", status=429, times=1)
        page = faulty.rp().authorize(browser)
    assert page.status_code == 503 and page.headers["retry-after"] == "1"  # RateLimit-Reset


def test_collect_failing_ends_in_a_503_page_and_one_error_line(faulty, caplog):
    bb = faulty
    caplog.set_level(logging.INFO, logger="broker.bankid")
    with httpx.Client(base_url=bb.issuer) as browser:
        _rp, txn_id, _ = begin(bb, browser)
        inject(browser, endpoint="collect", status=503, times=None)
        try:
            failed = poll_until(browser, txn_id, lambda d: d["status"] == "failed")
            page = browser.get(f"/login/bankid/{txn_id}/wait")
        finally:
            browser.delete("/bankid-simulator/control/faults")
        assert failed["rfa"] == "RFA5"
        assert browser.get(f"/login/bankid/{txn_id}/status").status_code == 503
        assert page.status_code == 503 and "Internt tekniskt fel" in page.text
        assert "Försök igen" in page.text
        assert order(bb, txn_id)["error_code"] == "maintenance"
    lines = [r for r in caplog.records if r.name == "broker.bankid"]
    errors = [r for r in lines if r.levelno == logging.ERROR]
    # The passing failures are warnings; the one that ended the order is the error.
    assert len(errors) == 1 and errors[0].error_code == "maintenance"
    assert sum(r.levelno == logging.WARNING and getattr(r, "kind", "") == "unavailable"
               for r in lines) >= 2


def test_our_own_integration_fault_is_a_503_too(faulty):
    with httpx.Client(base_url=faulty.issuer) as browser:
        inject(browser, endpoint="auth", status=400, times=1)  # invalidParameters: our bug
        page = faulty.rp().authorize(browser)
    assert page.status_code == 503 and "Okänt fel. Försök igen." in page.text  # RFA22


def test_the_persons_own_order_elsewhere_is_not_an_outage(redis, tmp_path, caplog):
    """alreadyInProgress is the person's situation (RFA4, 409), not a BankID fault."""
    caplog.set_level(logging.INFO, logger="broker.bankid")
    issuer, port, app = start_broker(redis, tmp_path, personal_number_field=True)
    with serve(app, port):
        bb = BankIDBroker(issuer, app, tmp_path)
        pages = []
        for _ in range(2):  # two browsers, the same person
            with httpx.Client(base_url=issuer) as browser:
                _rp, txn_id, choice = begin(bb, browser)
                csrf = re.search(r'name="csrf" value="([^"]+)"', choice.text).group(1)
                pages.append(browser.post(f"/login/bankid/{txn_id}/start", data={
                    "csrf": csrf, "device": "other", "personal_number": "199001012385"}))
    assert pages[0].status_code == 303
    assert pages[1].status_code == 409 and "redan påbörjad" in pages[1].text
    assert not [r for r in caplog.records if r.name == "broker.bankid" and r.levelno >= logging.ERROR]
