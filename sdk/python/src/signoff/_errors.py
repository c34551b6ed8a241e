"""Exceptions: what went wrong talking to Signoff, and the outcomes that are not an approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._models import Decision, Request


class SignoffError(Exception):
    """Base class of every exception this package raises."""


class ConfigurationError(SignoffError):
    """The client is missing its server or key, or the server's URL is not acceptable."""


class ServerUnavailable(SignoffError):
    """The server could not be reached (or kept answering 5xx) within the time allowed."""


class ApiError(SignoffError):
    """The server answered with an error (`{"error": {"code", "message"}}`)."""

    def __init__(self, status: int, code: str, message: str, method: str, path: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        super().__init__(f"Signoff refused {method} {path}: {status} {code}: {message}")


class Unauthorized(ApiError):
    """401: the agent key is missing, unknown or revoked."""


class NotFound(ApiError):
    """404: no such request of this agent's."""


class Conflict(ApiError):
    """409: not possible in the request's state (or an Idempotency-Key reused with another body)."""


class InvalidRequest(ApiError):
    """400, 413, 415 or 422: the request's fields do not fit the server's rules."""


class AlreadyStarted(Conflict):
    """409 `already_started`: this approval was started before; do not run the action again."""


class MismatchedAnswer(SignoffError):
    """The server answered about another request or action than the one submitted."""


class NotApproved(SignoffError):
    """The request ended without an approval. `request` is the request as the server last showed it."""

    def __init__(self, message: str, request: Request) -> None:
        self.request = request
        self.id = request.id
        super().__init__(message)


class Denied(NotApproved):
    """A reviewer (or a policy) denied the request. `comments` are the reviewers' comments."""

    def __init__(self, request: Request) -> None:
        self.decisions: list[Decision] = [d for d in request.decisions if d.verdict == "deny"]
        comments = [d.comment for d in self.decisions if d.comment]
        policy_reason: Optional[str] = None
        if not self.decisions:
            policy_reason = request.policy.deny_reason or f"denied by policy {request.policy.name!r}"
            comments = [policy_reason]
        self.comments: list[str] = comments
        self.by_policy = not self.decisions
        if self.decisions:
            said = "; ".join(f"{d.reviewer.display_name}: {d.comment}" for d in self.decisions)
            message = f"request {request.id} ({request.action} on {request.resource}) was denied by {said}"
        else:
            message = f"request {request.id} ({request.action} on {request.resource}) was denied: {policy_reason}"
        super().__init__(message, request)

    @property
    def comment(self) -> str:
        """The comments as one text, what to tell a model or a person."""
        return "\n".join(self.comments)


class Expired(NotApproved):
    """Nobody decided before the request expired."""

    def __init__(self, request: Request) -> None:
        super().__init__(
            f"request {request.id} ({request.action} on {request.resource}) expired before anyone decided",
            request,
        )


class Cancelled(NotApproved):
    """The request was cancelled before anyone decided."""

    def __init__(self, request: Request) -> None:
        super().__init__(f"request {request.id} ({request.action} on {request.resource}) was cancelled", request)


class TimedOut(NotApproved):
    """No decision within the caller's timeout; the request has been cancelled (`cancelled` says whether that worked)."""

    def __init__(self, request: Request, timeout: float, cancelled: bool = True) -> None:
        self.timeout = timeout
        self.cancelled = cancelled
        then = "the request was cancelled" if cancelled else "cancelling the request failed (it stays pending until it expires)"
        super().__init__(
            f"no decision on request {request.id} ({request.action} on {request.resource}) within {timeout:g}s; {then}",
            request,
        )
