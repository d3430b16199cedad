"""Settings under `connectors.siths`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class SithsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["proxy", "direct"] = "proxy"
    login_url: str | None = None
