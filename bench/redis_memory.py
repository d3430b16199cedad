"""Redis memory per login and per live session, measured (docs/operations.md, Redis).

    python bench/redis_memory.py [--logins 500]

Runs the broker in-process (test connector, one valid assignment, so no picker) against a
fresh redis-server, and reports MEMORY USAGE per kind of key and INFO's used_memory delta:
after the logins (codes issued), after the redemptions (refresh families), after one
rotation each, and after logout (what outlives a session).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import redis as redis_sync

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.brokers import running_broker  # noqa: E402
from tests.support.redis import redis_server  # noqa: E402


def kinds(r: redis_sync.Redis, prefix: str) -> dict[str, tuple[int, int]]:
    sizes: dict[str, list[int]] = collections.defaultdict(list)
    for key in r.scan_iter(match=prefix + "*", count=1000):
        name = key.decode()[len(prefix):]
        kind = name.split(":", 1)[0].split("|", 1)[0]
        sizes[kind].append(r.memory_usage(key) or 0)
    return {k: (len(v), sum(v) // max(len(v), 1)) for k, v in sorted(sizes.items())}


def report(step: str, r: redis_sync.Redis, prefix: str, base: int, logins: int) -> None:
    used = r.info("memory")["used_memory"] - base
    print(f"\n{step}: used_memory +{used / 1024:.0f} KiB, {used / logins:.0f} B per login")
    for kind, (count, avg) in kinds(r, prefix).items():
        print(f"  {kind:<14} {count:>6} keys, {avg:>6} B each")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=500)
    args = parser.parse_args()
    with redis_server() as (url, _), tempfile.TemporaryDirectory() as tmp:
        r = redis_sync.Redis.from_url(url)
        base = r.info("memory")["used_memory"]
        with running_broker(url, Path(tmp)) as b:
            prefix = b.broker.settings.store.prefix
            rp = b.rp()
            browsers, codes = [], []
            for _ in range(args.logins):
                browser = b.browser()
                codes.append((rp.login(browser), rp.verifier))
                browsers.append(browser)
            report("logins done, codes waiting", r, prefix, base, args.logins)
            tokens = []
            for code, verifier in codes:
                rp.verifier = verifier
                tokens.append(rp.token(code).json())
            report("codes redeemed (a refresh family each)", r, prefix, base, args.logins)
            for t in tokens:
                rp.refresh(t["refresh_token"])
            report("one refresh each", r, prefix, base, args.logins)
            for browser, t in zip(browsers, tokens, strict=True):
                browser.get("/logout", params={"id_token_hint": t["id_token"]})
                browser.close()
            report("logged out (what outlives the session)", r, prefix, base, args.logins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
