"""The YAML file source: validation with lines and keys, lookups, reload on change."""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pytest
from authz_support import ANNA_HSA, ANNA_PNR, USERS_YAML, FakeClock, bankid, siths

from broker.authz import AuthorizationFileError, open_source
from broker.authz.file import FileSource
from broker.authz.records import derive_assignment_id
from broker.authz.settings import AuthorizationSettings
from broker.authz.yamlfile import parse_users


def write(path: Path, text: str, bump: int = 0) -> None:
    path.write_text(text, encoding="utf-8")
    if bump:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "authz.yaml"
    write(path, USERS_YAML)
    return path


async def test_same_person_by_bankid_or_siths_is_the_same_user(users_file: Path) -> None:
    source = open_source(AuthorizationSettings(source="file", path="authz.yaml"),
                         users_file.parent)
    by_pnr = await source.find_user(bankid())
    by_hsa = await source.find_user(siths(ANNA_HSA.lower()))
    assert by_pnr is not None and by_hsa is not None
    assert by_pnr.id == by_hsa.id == "u-anna"
    assert by_pnr.personal_identity_number == ANNA_PNR
    assert await source.find_user(bankid("198112289874")) is None
    assert (await source.get_user("u-bo")).given_name == "Bo"
    assert await source.get_user("u-nobody") is None
    await source.ping()
    await source.aclose()


async def test_validity_and_client_filtering(users_file: Path) -> None:
    source = FileSource(users_file)
    anna = await source.get_user("u-anna")
    assert len(anna.assignments) == 2
    today = date(2025, 6, 1)
    valid = anna.valid_assignments("lifecare", today)
    assert [a.role.id for a in valid] == ["sjukskoterska"]  # the expired one does not count
    assert [a.role.id for a in anna.valid_assignments("mcss", today)] == ["sjukskoterska"]
    assert anna.valid_assignments("other-client", today) == []
    assert anna.valid_assignments("lifecare", date(2028, 1, 1)) == []  # past valid_to
    bo = await source.get_user("u-bo")
    assert bo.valid_assignments("lifecare", today) == []  # not yet valid
    assert len(bo.valid_assignments("lifecare", date(2099, 1, 1))) == 1


async def test_assignment_ids_are_derived_and_stable(users_file: Path) -> None:
    anna = await FileSource(users_file).get_user("u-anna")
    derived, explicit = anna.assignments
    assert explicit.id == "a-old"
    assert derived.id == derive_assignment_id("u-anna", "sjukskoterska", "SE2321000016-ABCD",
                                              "2120001234")
    # Changing validity or clients keeps the id.
    changed = USERS_YAML.replace("valid_to: 2027-12-31", "valid_to: 2030-12-31")
    again = next(u for u in parse_users(changed, "x") if u.id == "u-anna")
    assert again.assignments[0].id == derived.id
    assert again.assignments[0].valid_to == date(2030, 12, 31)


def test_unquoted_numbers_are_read_as_text(users_file: Path) -> None:
    text = USERS_YAML.replace('"199001012385"', "199001012385")
    anna = parse_users(text, "f")[0]
    assert anna.personal_identity_number == ANNA_PNR
    assert parse_users(text, "f")[1].assignments[0].organization.id == "2120001234"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('personal_identity_number: "199001012385"', 'personal_identity_number: "199001012384"',
         "line 3: users[0].personal_identity_number: the personal identity number's check digit"),
        ("hsa_id: SE2321000016-5678", "hsa_id: 2321000016-5678",
         "line 22: users[1].hsa_id: an HSA-id looks like"),
        ("valid_to: 2027-12-31", "valid_to: 2027-02-30",
         "line 14: users[0].assignments[0].valid_to: Input should be a valid date"),
        ("        clients: [lifecare]\n        valid_to",
         "        clients: [lifecare]\n        colour: blue\n        valid_to",
         "line 20: users[0].assignments[1].colour: unknown key"),
        ("      - id: a-old\n        role: {code: underskoterska, name: Undersköterska}\n",
         "      - id: a-old\n",
         "line 15: users[0].assignments[1].role: required key is missing"),
        ("valid_from: 2024-01-01\n        valid_to: 2027-12-31",
         "valid_from: 2028-01-01\n        valid_to: 2027-12-31",
         "line 9: users[0].assignments[0]: valid_to is before valid_from"),
        ("  - id: u-bo", "  - id: u-anna", "line 21: users[1].id: the same id as users[0]"),
        ("    given_name: Bo\n", "    given_name: Bo\n    given_name: Bosse\n",
         "line 24: users[1].given_name: key appears twice"),
        ("    hsa_id: SE2321000016-5678\n", "",
         "line 21: users[1]: a user needs personal_identity_number or hsa_id"),
    ],
)
def test_errors_name_the_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in USERS_YAML
    with pytest.raises(AuthorizationFileError) as err:
        parse_users(USERS_YAML.replace(old, new), "authz.yaml")
    assert f"authz.yaml, {expected}" in str(err.value)


def test_bad_personal_number_is_not_echoed() -> None:
    with pytest.raises(AuthorizationFileError) as err:
        parse_users(USERS_YAML.replace("199001012385", "199001012384"), "f")
    assert "199001012384" not in str(err.value)


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(AuthorizationFileError, match=r"f, line 5: not valid YAML"):
        parse_users("users:\n  - id: x\n    hsa_id: SE2321000016-1\n    a: [1, 2\n    b: 3\n", "f")


def test_start_up_fails_on_a_broken_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuthorizationFileError, match="cannot read the file"):
        FileSource(tmp_path / "missing.yaml")
    with pytest.raises(AuthorizationFileError, match=r"authorization\.path"):
        open_source(AuthorizationSettings(source="file"), tmp_path)
    bad = tmp_path / "bad.yaml"
    write(bad, "people: []\n")
    with pytest.raises(AuthorizationFileError, match="line 1: people: unknown key"):
        FileSource(bad)


async def test_reload_on_change_without_restart(users_file: Path) -> None:
    clock = FakeClock()
    source = FileSource(users_file, reload_interval=5, clock=clock)
    assert (await source.get_user("u-bo")).given_name == "Bo"

    write(users_file, USERS_YAML.replace("given_name: Bo", "given_name: Bosse"), bump=10)
    clock.now += 1  # within the interval: not checked yet
    assert (await source.get_user("u-bo")).given_name == "Bo"
    clock.now += 5
    assert (await source.get_user("u-bo")).given_name == "Bosse"

    # Removing a user takes effect the same way (withdrawal without restart).
    write(users_file, USERS_YAML.split("  - id: u-bo")[0], bump=20)
    clock.now += 5
    assert await source.get_user("u-bo") is None
    assert await source.find_user(bankid()) is not None


async def test_broken_reload_keeps_old_data_and_logs_line_and_key(
    users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    source = FileSource(users_file, reload_interval=0, clock=clock)
    broken = USERS_YAML.replace("given_name: Bo", "given_name: Bosse").replace(
        "hsa_id: SE2321000016-5678", "hsa_id: SE-oops")
    write(users_file, broken, bump=10)
    with caplog.at_level(logging.ERROR, logger="broker.authz.file"):
        bo = await source.get_user("u-bo")
        await source.get_user("u-bo")  # the same broken version is not logged twice
    assert bo is not None and bo.given_name == "Bo"  # the previous version still serves
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "keeping the previous version" in errors[0]
    assert "line 22: users[1].hsa_id" in errors[0]
    assert ANNA_PNR not in caplog.text

    # A fixed version is picked up again.
    write(users_file, broken.replace("SE-oops", "SE2321000016-5678"), bump=20)
    assert (await source.get_user("u-bo")).given_name == "Bosse"

    # A deleted file keeps the data too.
    os.remove(users_file)
    assert (await source.get_user("u-bo")).given_name == "Bosse"
