"""A TCP proxy between the broker and Redis that can lose a reply or refuse everything.

Faults a network really produces, on a real connection to a real Redis: a command that
reached the server and ran, but whose reply never came back (the connection drops, or
the reply simply does not arrive and the client times out); and a Redis that is down.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from tests.support.redis import free_port


@dataclass
class _Fault:
    pattern: bytes
    # "close": drop the reply and the connection; "hang": swallow the reply; "die": drop
    # the reply, cut every connection and refuse new ones (the master died right after
    # running the command) until set_down(False)
    mode: str


class RedisProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream_url = upstream_url
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 6379
        self.port = free_port()
        self.dropped = 0  # replies lost on purpose so far
        self.down = False
        self._fault: _Fault | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        """The upstream URL (credentials, database) with the proxy as its host."""
        parts = urlsplit(self.upstream_url)
        creds = parts.netloc.rpartition("@")[0]
        netloc = f"{creds}@127.0.0.1:{self.port}" if creds else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def lose_reply_to(self, pattern: bytes, mode: str = "close") -> None:
        """The next command whose bytes hold `pattern` runs, but its reply is lost."""
        with self._lock:
            self._fault = _Fault(pattern, mode)

    def set_down(self, down: bool) -> None:
        """Down: every connection is cut and new ones are refused at once."""
        self.down = down
        if down:
            self._loop.call_soon_threadsafe(self._cut_all)

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            writer.close()

    def _take_fault(self, data: bytes) -> _Fault | None:
        with self._lock:
            fault = self._fault
            if fault is not None and fault.pattern in data:
                self._fault = None
                return fault
        return None

    async def _pipe(self, client_r, client_w, server_r, server_w) -> None:
        lose: list[_Fault] = []

        async def upward() -> None:
            while data := await client_r.read(65536):
                fault = self._take_fault(data)
                if fault is not None:
                    lose.append(fault)
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downward() -> None:
            while data := await server_r.read(65536):
                if lose:
                    fault = lose.pop()
                    self.dropped += 1
                    if fault.mode == "die":
                        self.down = True
                        self._cut_all()
                        return
                    if fault.mode == "close":
                        client_w.close()
                        server_w.close()
                        return
                    continue  # "hang": the client never hears back on this connection
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(upward(), downward(), return_exceptions=True)

    async def _handle(self, client_r, client_w) -> None:
        if self.down:
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, server_w))
        try:
            await self._pipe(client_r, client_w, server_r, server_w)
        finally:
            self._writers.difference_update((client_w, server_w))

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop)
        self._server = future.result(10)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            self._cut_all()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def redis_proxy(redis_url: str) -> Iterator[RedisProxy]:
    proxy = RedisProxy(redis_url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
