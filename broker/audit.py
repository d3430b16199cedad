"""Structured audit events: who, how, which client, which assignment, outcome.

The audit log is the only place a personal identity number appears whole; ordinary logs
carry the masked form. JSON lines, to stdout or appended to a file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any


class AuditLog:
    def __init__(self, target: str = "stdout") -> None:
        self.target = target
        self._fh: IO[str] | None = None

    def _stream(self) -> IO[str]:
        if self.target == "stdout":
            return sys.stdout
        if self._fh is None:
            path = Path(self.target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8")
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
