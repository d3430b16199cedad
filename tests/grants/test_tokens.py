"""The shapes of codes and tokens: what is ours is recognised, anything else is not,
before any store is asked."""

from __future__ import annotations

import pytest

from broker.grants.tokens import MAX_TOKEN, TokenMinter, code_family

KEY, OTHER = b"k" * 32, b"o" * 32


def test_a_minter_needs_a_key():
    with pytest.raises(ValueError, match="no key"):
        TokenMinter([])


def test_tokens_of_a_generation_are_made_again_identically_and_only_by_the_key():
    minter = TokenMinter([KEY])
    family = minter.new_family()
    assert len(family) >= 16
    assert minter.refresh_token(family, 3) == minter.refresh_token(family, 3)
    assert minter.refresh_token(family, 3) != minter.refresh_token(family, 4)
    assert minter.refresh_token(family, 3) != minter.access_token(family, 3)
    assert TokenMinter([OTHER]).refresh_token(family, 3) != minter.refresh_token(family, 3)


def test_read_recognises_its_own_kind_under_any_current_key():
    old, rotated = TokenMinter([OTHER]), TokenMinter([KEY, OTHER])
    family = old.new_family()
    token = old.refresh_token(family, 7)
    assert rotated.read(token, "refresh").gen == 7  # signed before the rotation
    assert rotated.read(token, "access") is None  # kinds never mix
    assert TokenMinter([KEY]).read(token, "refresh") is None  # the old key is gone


@pytest.mark.parametrize("mangle", [
    lambda t: t + ".x",  # four parts
    lambda t: t.rsplit(".", 1)[0],  # two parts
    lambda t: "!" * 22 + t[t.index("."):],  # not a family id
    lambda t: t.replace(".7.", ".07."),  # a generation written another way
    lambda t: t.replace(".7.", ".x."),  # not a number
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the MAC changed
    lambda t: t + "A" * (MAX_TOKEN - len(t) + 1),  # too long
])
def test_read_refuses_anything_else(mangle):
    minter = TokenMinter([KEY])
    token = minter.refresh_token(minter.new_family(), 7)
    assert minter.read(token, "refresh") is not None
    assert minter.read(mangle(token), "refresh") is None


def test_read_refuses_what_is_not_a_string():
    assert TokenMinter([KEY]).read(None, "refresh") is None  # type: ignore[arg-type]
    assert TokenMinter([KEY]).read(12, "refresh") is None  # type: ignore[arg-type]


def test_code_family():
    family = TokenMinter.new_family()
    code = TokenMinter.code(family)
    assert code_family(code) == family and len(code) > len(family) + 40
    for bad in ("", "nodot", family + ".", "." + "c" * 43, "!" * 22 + ".c", family + "." + "c" * 300,
                None, 5):
        assert code_family(bad) is None, bad  # type: ignore[arg-type]
