"""The file source: users and assignments in one YAML file (format in `records.py`).

The embedded default and what `broker demo` uses. The file is read at start-up, where a
broken or missing file stops the broker, and re-read when it changes, without a restart: on
access, at most every `reload_interval` seconds, its size and modification time are
compared with the loaded version. A broken new version is logged at error level with its
lines and keys and the previous data keeps serving, so a typo during office hours does not
lock everyone out. But that also means a withdrawal in the broken version has not taken
effect: the source reports itself degraded (a readiness detail that keeps the pod in
service, and metrics with the time of the last good load) until a good version loads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .directory import UserDirectory
from .model import SourceStatus, User
from .yamlfile import AuthorizationFileError, read_users

if TYPE_CHECKING:
    from ..connectors.base import Identity
    from .settings import FileAuthorizationSettings

log = logging.getLogger(__name__)

_Signature = tuple[int, int, int]
_MISSING: _Signature = (-1, -1, -1)


def _signature(path: Path) -> _Signature:
    try:
        st = path.stat()
    except OSError:
        return _MISSING
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FileSource:
    """Serves lookups from memory; reloads the file when it has changed."""

    def __init__(
        self,
        path: Path,
        *,
        reload_interval: float = 2.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        on_status: Callable[[SourceStatus], None] | None = None,
    ) -> None:
        self.path = path
        self.reload_interval = reload_interval
        self.timeout = timeout
        self._clock = clock
        self._on_status = on_status
        self._signature = _signature(path)
        self._directory = UserDirectory(read_users(path))
        self._checked = clock()
        # The signature of a version that failed, so it is logged once and not re-parsed.
        self._rejected: _Signature | None = None
        self._reload: asyncio.Task[None] | None = None
        self._status = SourceStatus(last_good_load=time.time())
        self._report()
        log.info("authorization file %s loaded: %d users", path, len(self._directory))

    def status(self) -> SourceStatus:
        return self._status

    def _report(self, degraded: str | None = None, loaded: bool = False) -> None:
        last = time.time() if loaded else self._status.last_good_load
        self._status = SourceStatus(degraded=degraded, last_good_load=last)
        if self._on_status is not None:
            self._on_status(self._status)

    @classmethod
    def from_settings(cls, settings: FileAuthorizationSettings, base_dir: Path,
                      on_status: Callable[[SourceStatus], None] | None = None) -> FileSource:
        if not settings.path:
            raise AuthorizationFileError(
                "authorization.path: set the path of the authorization file (source: file)"
            )
        path = Path(settings.path)
        return cls(
            path if path.is_absolute() else base_dir / path,
            reload_interval=settings.reload_interval,
            timeout=settings.timeout,
            on_status=on_status,
        )

    @property
    def users(self) -> tuple[User, ...]:
        """The users currently served (for `broker demo` listings and tests)."""
        return self._directory.users

    async def find_user(self, identity: Identity) -> User | None:
        return (await self._current()).find(identity)

    async def get_user(self, user_id: str) -> User | None:
        return (await self._current()).get(user_id)

    async def ping(self) -> None:
        """The loaded data always answers; a missing or broken file only logs (see above)."""
        await self._current()

    async def aclose(self) -> None:
        if self._reload is not None:
            self._reload.cancel()

    async def _current(self) -> UserDirectory:
        now = self._clock()
        if now - self._checked >= self.reload_interval:
            self._checked = now
            signature = _signature(self.path)
            if signature != self._signature and signature != self._rejected:
                if self._reload is None or self._reload.done():
                    self._reload = asyncio.create_task(self._load(signature))
        if self._reload is not None and not self._reload.done():
            # Wait for the new version up to the lookup timeout; after that the previous
            # version answers while the reload finishes in the background.
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(self._reload)
            except TimeoutError:
                log.warning("authorization file %s: reload is slow, serving the previous version",
                            self.path)
        return self._directory

    async def _load(self, signature: _Signature) -> None:
        if signature == _MISSING:
            log.error("authorization file %s is missing or unreadable; keeping the previous "
                      "version (changes since it, withdrawals too, have NOT taken effect)",
                      self.path)
            self._rejected = signature
            self._report(f"{self.path}: missing or unreadable; serving the last good version")
            return
        try:
            users = await asyncio.to_thread(read_users, self.path)
        except AuthorizationFileError as exc:
            self._rejected = signature
            log.error("authorization file %s has errors; keeping the previous version (changes "
                      "in it, withdrawals too, have NOT taken effect):\n%s", self.path, exc)
            first = str(exc).splitlines()[0] if str(exc) else "errors"
            self._report(f"{first}; serving the last good version")
            return
        # Read the signature again: a file replaced while it was parsed is read once more.
        self._signature = signature if _signature(self.path) == signature else _MISSING
        self._directory = UserDirectory(users)
        self._rejected = None
        self._report(loaded=True)
        log.info("authorization file %s reloaded: %d users", self.path, len(users))

