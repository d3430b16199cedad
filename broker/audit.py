"""Structured audit events: who, how, which client, which assignment, outcome.

The audit log is the only place a personal identity number appears whole; ordinary logs
carry the masked form. JSON lines, to stdout or appended to a file that only the broker's
own user may read (0600, in a directory made 0700 when the broker creates it).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


class AuditLog:
    def __init__(self, target: str = "stdout") -> None:
        self.target = target
        self._fh: IO[str] | None = None

    def open(self) -> None:
        """Open the file now (at start-up: a log that cannot be written stops the broker
        instead of the first login). Raises OSError."""
        self._stream()

    def _stream(self) -> IO[str]:
        if self.target == "stdout":
            return sys.stdout
        if self._fh is None:
            path = Path(self.target)
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
                    os.fchmod(fd, FILE_MODE)  # a file from before, or made by someone else
            except OSError:
                os.close(fd)
                raise
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
        return self._fh

    def event(self, name: str, **fields: Any) -> None:
        from .logs import current_request_id

        record = {"audit": name, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "request_id": current_request_id(),
                  **{k: v for k, v in fields.items() if v is not None}}
        if record["request_id"] is None:
            del record["request_id"]
        stream = self._stream()
        stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        stream.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
