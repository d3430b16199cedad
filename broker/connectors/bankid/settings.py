"""Settings under `connectors.bankid`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class BankIDSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: Literal["simulator", "test", "production"] = "simulator"
