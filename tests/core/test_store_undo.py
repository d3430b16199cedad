"""A take whose outcome the store could not confirm is put back before the caller
answers 503, so the caller's retry finds what the take found (a retry is not a replay);
and only that call's own take is ever put back.

"Could not confirm" is made here by asking for more replicas than the deployment has:
every write then comes back unconfirmed after `replica_timeout`, like a master whose
replicas are all resyncing after a fail-over."""

from __future__ import annotations

import secrets

import pytest

from broker.store import StoreError, open_store


@pytest.fixture(params=["redis", "cluster"])
async def stores(request, redis):
    url = redis if request.param == "redis" else request.getfixturevalue("redis_cluster_url")
    prefix = f"undo{secrets.token_hex(4)}:"
    confirmed = open_store(url, prefix=prefix)
    unconfirmed = open_store(url, prefix=prefix, replicas=3, replica_timeout=0.05)
    yield confirmed, unconfirmed
    await confirmed.close()
    await unconfirmed.close()


async def test_an_unconfirmed_redemption_leaves_the_code_for_the_retry(stores):
    ok, unsure = stores
    await ok.put("{f}code", {"client": "rp"}, 30)
    with pytest.raises(StoreError, match="replicas acknowledged"):
        await unsure.take_and_put("{f}code", [("{f}family", {"gen": 0}, 600),
                                              ("{f}spent", {"family": "f"}, 600)])
    assert await ok.get("{f}code") == {"client": "rp"}
    assert 28 <= await ok.ttl("{f}code") <= 30  # back with the time it had left
    assert await ok.get_many(["{f}family", "{f}spent"]) == [None, None]
    # The retry redeems it, once.
    assert await ok.take_and_put("{f}code", [("{f}family", {"gen": 0}, 600)])
    assert not await ok.take_and_put("{f}code", [("{f}family", {"gen": 9}, 600)])


async def test_another_callers_take_is_never_put_back(stores):
    ok, unsure = stores
    await ok.put("{f}code", {"client": "rp"}, 30)
    assert await ok.take_and_put("{f}code", [("{f}family", {"gen": 0}, 600)])
    # A replay whose own (failed) take goes unconfirmed must not resurrect the code.
    with pytest.raises(StoreError):
        await unsure.take_and_put("{f}code", [("{f}family", {"gen": 9}, 600)])
    assert await ok.get("{f}code") is None
    assert await ok.get("{f}family") == {"gen": 0}


async def test_an_unconfirmed_take_puts_the_value_back(stores):
    ok, unsure = stores
    await ok.put("{s}session", {"sid": "s"}, 30)
    with pytest.raises(StoreError):
        await unsure.take("{s}session")
    assert await ok.get("{s}session") == {"sid": "s"}
    assert await ok.take("{s}session") == {"sid": "s"}
    with pytest.raises(StoreError):
        await unsure.take("{s}session")  # nothing there to take, nothing put back
    assert await ok.get("{s}session") is None
