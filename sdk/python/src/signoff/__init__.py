"""Signoff: put a human approval in front of an agent's sensitive actions.

    from signoff import Signoff
    Signoff().request_approval("db.export", "postgres://prod/customers", reason="Quarterly audit")
"""

from ._async_client import AsyncSignoff
from ._client import Signoff
from ._decorator import require_approval
from ._errors import (
    AlreadyStarted,
    ApiError,
    Cancelled,
    ConfigurationError,
    Conflict,
    Denied,
    Expired,
    InvalidRequest,
    MismatchedAnswer,
    NotApproved,
    NotFound,
    ServerUnavailable,
    SignoffError,
    TimedOut,
    Unauthorized,
)
from ._jsonsafe import json_safe
from ._models import Approval, Decision, Policy, Request, Reviewer

__version__ = "0.1.0"

__all__ = [
    "AlreadyStarted",
    "ApiError",
    "Approval",
    "AsyncSignoff",
    "Cancelled",
    "ConfigurationError",
    "Conflict",
    "Decision",
    "Denied",
    "Expired",
    "InvalidRequest",
    "MismatchedAnswer",
    "NotApproved",
    "NotFound",
    "Policy",
    "Request",
    "Reviewer",
    "ServerUnavailable",
    "Signoff",
    "SignoffError",
    "TimedOut",
    "Unauthorized",
    "json_safe",
    "require_approval",
]
