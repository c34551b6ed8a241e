"""The client's conversations with the server, written once for both clients.

Each flow is a generator that yields what it needs done (`Http`, `Sleep`) and receives the
outcome (an `httpx.Response`, or the `httpx.TransportError` raised instead); the sync and
async clients drive the same generators with their own IO. This keeps the retry and
reconnect rules in one place.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import httpx

from ._common import (
    FIRST_BACKOFF,
    MAX_POLL,
    api_error,
    check_same,
    describe,
    is_transient,
    next_backoff,
    parse_request,
    retry_after,
)
from ._errors import ApiError, Conflict, NotFound, ServerUnavailable, SignoffError, TimedOut
from ._models import Approval, Request

log = logging.getLogger("signoff")


@dataclass
class Http:
    method: str
    path: str
    params: Optional[dict[str, Any]] = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    read_timeout: float = 30.0


@dataclass
class Sleep:
    seconds: float


Outcome = Union[httpx.Response, httpx.TransportError]
Flow = Generator[Union[Http, Sleep], Any, Any]


@dataclass
class FlowState:
    """What a flow knows so far, for the caller's clean-up when it is interrupted."""

    request: Optional[Request] = None


def _deadline_left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


def call(
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Optional[dict[str, Any]] = None,
    headers: Optional[dict[str, str]] = None,
    retry_until: Optional[float],
    read_timeout: float = 30.0,
) -> Generator[Union[Http, Sleep], Any, httpx.Response]:
    """One call, retried across network errors, 429 and 502-504 until `retry_until` (monotonic; None: forever)."""
    backoff = FIRST_BACKOFF
    while True:
        result: Outcome = yield Http(method, path, params, json, dict(headers or {}), read_timeout)
        if isinstance(result, httpx.Response) and result.is_success:
            return result
        if not is_transient(result):
            assert isinstance(result, httpx.Response)
            raise api_error(result)
        delay = retry_after(result, backoff)
        left = _deadline_left(retry_until)
        if left is not None and left <= delay:
            if isinstance(result, httpx.Response) and result.status_code != 503:
                raise api_error(result)
            raise ServerUnavailable(f"Signoff did not answer {method} {path} in time: {describe(result)}")
        log.info("signoff: %s %s failed (%s); retrying in %.1fs", method, path, describe(result), delay)
        yield Sleep(delay)
        backoff = next_backoff(backoff)


def submit(
    body: dict[str, Any], key: str, *, retry_until: Optional[float]
) -> Generator[Union[Http, Sleep], Any, Request]:
    """`POST /api/v1/requests` with an Idempotency-Key, so that a retry never asks twice."""
    response = yield from call(
        "POST", "/api/v1/requests", json=body, headers={"Idempotency-Key": key}, retry_until=retry_until
    )
    return check_same(parse_request(response), body=body)


def get(request_id: str, *, retry_until: Optional[float]) -> Generator[Union[Http, Sleep], Any, Request]:
    response = yield from call("GET", f"/api/v1/requests/{request_id}", retry_until=retry_until)
    return check_same(parse_request(response), id=request_id)


def cancel(request_id: str, *, retry_until: Optional[float]) -> Generator[Union[Http, Sleep], Any, Request]:
    """Cancels; when it is no longer pending (decided meanwhile, or an earlier try went through),
    answers the request as it stands instead of an error."""
    try:
        response = yield from call("POST", f"/api/v1/requests/{request_id}/cancel", retry_until=retry_until)
    except Conflict:
        return (yield from get(request_id, retry_until=retry_until))
    return check_same(parse_request(response), id=request_id)


def start(request_id: str, *, retry_until: Optional[float]) -> Generator[Union[Http, Sleep], Any, Request]:
    """Records the start of an approved action; `AlreadyStarted` when it was started before."""
    response = yield from call("POST", f"/api/v1/requests/{request_id}/start", retry_until=retry_until)
    return check_same(parse_request(response), id=request_id)


def report(
    request_id: str, body: dict[str, Any], *, retry_until: Optional[float]
) -> Generator[Union[Http, Sleep], Any, Request]:
    """Reports an outcome; a retry of a report that went through answers the request as it stands."""
    try:
        response = yield from call("POST", f"/api/v1/requests/{request_id}/result", json=body, retry_until=retry_until)
    except Conflict:
        current = yield from get(request_id, retry_until=retry_until)
        if current.status == body["status"]:
            return current
        raise
    return check_same(parse_request(response), id=request_id)


def wait(
    state: FlowState,
    request: Request,
    deadline: Optional[float],
    resubmit: Optional[tuple[dict[str, Any], str]] = None,
) -> Generator[Union[Http, Sleep], Any, Request]:
    """Long-polls until the request is no longer pending or `deadline` (monotonic) passes.

    Network errors, restarts and 5xx are waited out. With `resubmit` (body, key), a server
    that no longer knows the request is asked again with the same Idempotency-Key.
    """
    backoff = FIRST_BACKOFF
    resubmits = 0
    state.request = request
    while request.pending:
        left = _deadline_left(deadline)
        if left is not None and left <= 0:
            break
        poll = MAX_POLL if left is None else min(MAX_POLL, left)
        result: Outcome = yield Http(
            "GET",
            f"/api/v1/requests/{request.id}/wait",
            params={"timeout_s": max(1, math.ceil(poll))},
            read_timeout=poll + 15,
        )
        if isinstance(result, httpx.Response) and result.is_success:
            request = check_same(parse_request(result), id=request.id)
            state.request = request
            backoff = FIRST_BACKOFF
            continue
        if isinstance(result, httpx.Response) and result.status_code == 404 and resubmit and resubmits < 3:
            resubmits += 1
            body, key = resubmit
            log.warning("signoff: the server no longer knows request %s; submitting it again", request.id)
            request = yield from submit(body, key, retry_until=deadline)
            state.request = request
            continue
        if not is_transient(result):
            assert isinstance(result, httpx.Response)
            raise api_error(result)
        delay = retry_after(result, backoff)
        left = _deadline_left(deadline)
        if left is not None:
            delay = max(0.0, min(delay, left))
        log.info("signoff: waiting on %s: %s; reconnecting in %.1fs", request.id, describe(result), delay)
        yield Sleep(delay)
        backoff = next_backoff(backoff)
    return request


CANCEL_GRACE = 15.0
"""How long a timed-out `request_approval` keeps trying to cancel its request."""


def approval(
    state: FlowState, body: dict[str, Any], key: str, timeout: Optional[float]
) -> Generator[Union[Http, Sleep], Any, Approval]:
    """Submit, wait, and answer the approval or raise the outcome (cancelling on timeout)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    request = yield from submit(body, key, retry_until=deadline)
    state.request = request
    request = yield from wait(state, request, deadline, resubmit=(body, key))
    if not request.pending:
        return request.approval()
    assert timeout is not None
    try:
        final = yield from cancel(request.id, retry_until=time.monotonic() + CANCEL_GRACE)
    except (ServerUnavailable, ApiError) as err:
        raise TimedOut(request, timeout, cancelled=False) from err
    state.request = final
    if final.status == "cancelled":
        raise TimedOut(final, timeout)
    # Decided while the cancel was on its way: that decision stands.
    return final.approval()


__all__ = [
    "CANCEL_GRACE",
    "Flow",
    "FlowState",
    "Http",
    "NotFound",
    "Sleep",
    "SignoffError",
    "approval",
    "call",
    "cancel",
    "get",
    "report",
    "start",
    "submit",
    "wait",
]
