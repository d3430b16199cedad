"""BankID RP API v6: client, QR frames, RFA messages and the order flow for login pages."""

from .client import BankIDClient, client_from_settings
from .errors import (
    AlreadyInProgress,
    BankIDConnectionError,
    BankIDError,
    InternalError,
    InvalidParameters,
    Maintenance,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    UnknownBankIDError,
    UnsupportedMediaType,
)
from .messages import MESSAGES, UserMessage, message, user_message
from .models import (
    AppContext,
    CollectResult,
    CompletionData,
    Device,
    Order,
    OrderRequirement,
    User,
    WebContext,
)
from .orders import BankIDOrders, OrderState, PollResult, error_message, identity_from_completion
from .qr import qr_payload, qr_payload_at, qr_time, verify_qr_payload
from .ratelimit import StartLimits
from .settings import BankIDSettings
from .tls import TLSConfigError, context_from_settings

__all__ = [
    "MESSAGES",
    "AlreadyInProgress",
    "AppContext",
    "BankIDClient",
    "BankIDConnectionError",
    "BankIDError",
    "BankIDOrders",
    "BankIDSettings",
    "CollectResult",
    "CompletionData",
    "Device",
    "InternalError",
    "InvalidParameters",
    "Maintenance",
    "MethodNotAllowed",
    "NotFound",
    "Order",
    "OrderRequirement",
    "OrderState",
    "PollResult",
    "RequestTimeout",
    "StartLimits",
    "TLSConfigError",
    "TooManyRequests",
    "Unauthorized",
    "UnknownBankIDError",
    "UnsupportedMediaType",
    "User",
    "UserMessage",
    "WebContext",
    "client_from_settings",
    "context_from_settings",
    "error_message",
    "identity_from_completion",
    "message",
    "qr_payload",
    "qr_payload_at",
    "qr_time",
    "user_message",
    "verify_qr_payload",
]
