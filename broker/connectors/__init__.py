"""Upstream login methods, one package each behind the small interface in `base`."""

from .base import (
    LOA2,
    LOA3,
    Connector,
    ConnectorContext,
    ConnectorFactory,
    Identity,
    LoginFailure,
    LoginFlow,
)

__all__ = ["LOA2", "LOA3", "Connector", "ConnectorContext", "ConnectorFactory", "Identity",
           "LoginFailure", "LoginFlow"]
