"""`Signoff`: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Optional, TypeVar

import httpx

from . import _flow
from ._common import (
    DEFAULT_TIMEOUT,
    Seconds,
    headers,
    new_idempotency_key,
    request_body,
    resolve_key,
    resolve_server,
    seconds,
)
from ._errors import SignoffError
from ._jsonsafe import json_safe
from ._models import Approval, Request

T = TypeVar("T")

_UNSET: Any = object()


class Signoff:
    """A Signoff agent client.

    >>> signoff = Signoff()  # SIGNOFF_SERVER and SIGNOFF_AGENT_KEY from the environment
    >>> approval = signoff.request_approval("db.export", "postgres://prod/customers", reason="Quarterly audit")

    `timeout` is how long `request_approval` waits by default; `retry_for` how long the other
    calls keep retrying across network errors and restarts before raising `ServerUnavailable`.
    """

    def __init__(
        self,
        server: Optional[str] = None,
        key: Optional[str] = None,
        *,
        timeout: Optional[Seconds] = DEFAULT_TIMEOUT,
        retry_for: Seconds = 30.0,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        self.server = resolve_server(server)
        self._key = resolve_key(key)
        self.timeout = seconds(timeout)
        self.retry_for = float(seconds(retry_for) or 0.0)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client()
        self._headers = headers(self._key)

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Signoff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Signoff(server={self.server!r})"

    def _run(self, flow: _flow.Flow) -> Any:
        outcome: Any = None
        while True:
            try:
                step = flow.send(outcome)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, _flow.Sleep):
                time.sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = self._http.request(
                    step.method,
                    self.server + step.path,
                    params=step.params,
                    json=step.json,
                    headers={**self._headers, **step.headers},
                    timeout=httpx.Timeout(10.0, read=step.read_timeout),
                )
            except httpx.TransportError as err:
                outcome = err

    def _retry_until(self) -> float:
        return time.monotonic() + self.retry_for

    # -- the agent API ----------------------------------------------------------------------

    def request_approval(
        self,
        action: str,
        resource: str,
        *,
        reason: str,
        title: Optional[str] = None,
        payload: Any = None,
        diff: Any = None,
        labels: Optional[dict[str, str]] = None,
        on_behalf_of: Optional[str] = None,
        context: Any = None,
        idempotency_key: Optional[str] = None,
        timeout: Optional[Seconds] = _UNSET,
        ttl: Optional[Seconds] = None,
        callback_url: Optional[str] = None,
    ) -> Approval:
        """Submits the action, waits for the decision and returns the `Approval`.

        Raises `Denied` (with the reviewers' comments), `Expired`, `Cancelled`, or `TimedOut`
        when no decision came within `timeout` seconds (the request is then cancelled;
        `None` waits until the request is decided or expires). Network errors and server
        restarts are waited out; the submission carries an Idempotency-Key (generated unless
        given), so a retry, here or in a later run with the same key, never asks twice.
        """
        wait_for = self.timeout if timeout is _UNSET else seconds(timeout)
        body = request_body(
            action,
            resource,
            reason=reason,
            title=title,
            payload=payload,
            diff=diff,
            labels=labels,
            on_behalf_of=on_behalf_of,
            context=context,
            ttl=ttl,
            callback_url=callback_url,
        )
        key = idempotency_key or new_idempotency_key()
        state = _flow.FlowState()
        try:
            approval: Approval = self._run(_flow.approval(state, body, key, wait_for))
            return approval
        except KeyboardInterrupt:
            self._cancel_quietly(state)
            raise

    def _cancel_quietly(self, state: _flow.FlowState) -> None:
        if state.request is not None and state.request.pending:
            try:
                self._run(_flow.cancel(state.request.id, retry_until=time.monotonic() + 5.0))
            except SignoffError:
                pass

    def submit(
        self,
        action: str,
        resource: str,
        *,
        reason: Optional[str] = None,
        title: Optional[str] = None,
        payload: Any = None,
        diff: Any = None,
        labels: Optional[dict[str, str]] = None,
        on_behalf_of: Optional[str] = None,
        context: Any = None,
        idempotency_key: Optional[str] = None,
        ttl: Optional[Seconds] = None,
        callback_url: Optional[str] = None,
    ) -> str:
        """Submits the action and returns the request's id, without waiting.

        The same `idempotency_key` with the same fields answers the same id.
        """
        return self.submit_request(
            action,
            resource,
            reason=reason,
            title=title,
            payload=payload,
            diff=diff,
            labels=labels,
            on_behalf_of=on_behalf_of,
            context=context,
            idempotency_key=idempotency_key,
            ttl=ttl,
            callback_url=callback_url,
        ).id

    def submit_request(
        self,
        action: str,
        resource: str,
        *,
        reason: Optional[str] = None,
        title: Optional[str] = None,
        payload: Any = None,
        diff: Any = None,
        labels: Optional[dict[str, str]] = None,
        on_behalf_of: Optional[str] = None,
        context: Any = None,
        idempotency_key: Optional[str] = None,
        ttl: Optional[Seconds] = None,
        callback_url: Optional[str] = None,
    ) -> Request:
        """As `submit`, answering the whole request (a policy may have decided it already)."""
        body = request_body(
            action,
            resource,
            reason=reason,
            title=title,
            payload=payload,
            diff=diff,
            labels=labels,
            on_behalf_of=on_behalf_of,
            context=context,
            ttl=ttl,
            callback_url=callback_url,
        )
        key = idempotency_key or new_idempotency_key()
        result: Request = self._run(_flow.submit(body, key, retry_until=self._retry_until()))
        return result

    def status(self, request_id: str) -> Request:
        """The request as it stands."""
        result: Request = self._run(_flow.get(request_id, retry_until=self._retry_until()))
        return result

    def wait(self, request_id: str, timeout: Optional[Seconds] = 60.0) -> Request:
        """Waits until the request is no longer pending, or `timeout` seconds (`None`: no limit).

        Answers the request as it then stands: look at `.status`, or call `.approval()`
        for the `Approval` (raising `Denied`, `Expired` or `Cancelled`). Network errors
        and restarts are waited out.
        """
        limit = seconds(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        current = self.status(request_id)
        result: Request = self._run(_flow.wait(_flow.FlowState(), current, deadline))
        return result

    def cancel(self, request_id: str) -> Request:
        """Cancels a pending request; answers it as it stands (it may have been decided meanwhile)."""
        result: Request = self._run(_flow.cancel(request_id, retry_until=self._retry_until()))
        return result

    def start(self, request_id: str) -> Request:
        """Records, just before running an approved action, that it starts.

        A second start of the same approval raises `AlreadyStarted`: do not run it again.
        """
        result: Request = self._run(_flow.start(request_id, retry_until=self._retry_until()))
        return result

    def report(
        self,
        request_id: str,
        status: Literal["executed", "failed"],
        detail: Any = None,
        *,
        receipt: Optional[str] = None,
    ) -> Request:
        """Says how an approved action went: `executed` or `failed`, with any JSON `detail`."""
        if status not in ("executed", "failed"):
            raise ValueError(f"status must be 'executed' or 'failed', not {status!r}")
        body: dict[str, Any] = {"status": status}
        if detail is not None:
            body["detail"] = json_safe(detail)
        if receipt is not None:
            body["receipt"] = receipt
        result: Request = self._run(_flow.report(request_id, body, retry_until=self._retry_until()))
        return result

    def require_approval(
        self,
        action: str,
        resource: Any = None,
        **options: Any,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """`@signoff.require_approval(...)`: `signoff.require_approval` bound to this client."""
        from ._decorator import require_approval

        return require_approval(action, resource, client=self, **options)


__all__ = ["Signoff"]
