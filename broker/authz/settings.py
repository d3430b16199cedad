"""Settings under `authorization`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class AuthorizationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["file"] = "file"
    path: str | None = None
    timeout: float = 3.0
