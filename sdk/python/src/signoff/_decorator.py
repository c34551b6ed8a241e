"""`@require_approval`: a function that runs only once a human approved the call."""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

from ._common import Seconds
from ._errors import SignoffError
from ._jsonsafe import json_safe

if TYPE_CHECKING:
    from ._async_client import AsyncSignoff
    from ._client import Signoff

log = logging.getLogger("signoff")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()
_DETAIL_LIMIT = 4000

Client = Union["Signoff", "AsyncSignoff"]


def call_payload(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name, as JSON (`self` and `cls` left out)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": json_safe(list(args)), "kwargs": json_safe(kwargs)}
    bound.apply_defaults()
    arguments: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if name in ("self", "cls"):
            continue
        parameter = bound.signature.parameters[name]
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update({str(k): json_safe(v) for k, v in value.items()})
        else:
            arguments[name] = json_safe(value)
    return arguments


def _resolve(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def failure_detail(error: BaseException) -> dict[str, str]:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if len(text) > _DETAIL_LIMIT:
        text = text[: _DETAIL_LIMIT - 1] + "…"
    return {"error": text}


class _Clients:
    """The client a decorated function uses: the one given, or one from the environment made at
    its first call (so that SIGNOFF_SERVER and SIGNOFF_AGENT_KEY may be set after import)."""

    def __init__(self, given: Optional[Client]) -> None:
        self._given = given
        self._sync: Optional[Signoff] = None
        self._async: Optional[AsyncSignoff] = None
        self._lock = threading.Lock()

    def sync(self) -> Signoff:
        from ._async_client import AsyncSignoff
        from ._client import Signoff

        given = self._given
        if isinstance(given, Signoff):
            return given
        with self._lock:
            if self._sync is None:
                if isinstance(given, AsyncSignoff):
                    self._sync = Signoff(given.server, given._key, timeout=given.timeout, retry_for=given.retry_for)
                else:
                    self._sync = Signoff()
            return self._sync

    def asynchronous(self) -> AsyncSignoff:
        from ._async_client import AsyncSignoff
        from ._client import Signoff

        given = self._given
        if isinstance(given, AsyncSignoff):
            return given
        with self._lock:
            if self._async is None:
                if isinstance(given, Signoff):
                    self._async = AsyncSignoff(given.server, given._key, timeout=given.timeout, retry_for=given.retry_for)
                else:
                    self._async = AsyncSignoff()
            return self._async


def require_approval(
    action: str,
    resource: Any = None,
    *,
    reason: Any = None,
    title: Any = None,
    labels: Any = None,
    on_behalf_of: Any = None,
    context: Any = None,
    diff: Any = None,
    payload: Any = None,
    idempotency_key: Any = None,
    timeout: Optional[Seconds] = _UNSET,
    ttl: Optional[Seconds] = None,
    client: Optional[Client] = None,
) -> Callable[[F], F]:
    """Runs the decorated function (sync or async) only once a reviewer approved the call.

    The call's arguments become the request's payload (as JSON; pass `payload=` to choose).
    `resource`, `reason`, `title`, `labels`, `on_behalf_of`, `context`, `diff` and
    `idempotency_key` may be values or functions of the call's arguments
    (`resource=lambda table, **_: f"postgres://prod/{table}"`). Without a `resource`, the
    function's qualified name is the resource. A denial raises `Denied` (and the function
    does not run); so do `Expired`, `Cancelled`, `TimedOut`. Once approved, the start is
    recorded, the function runs, and its outcome is reported: `executed`, or `failed` with
    the exception's text (the exception is raised again).
    """
    clients = _Clients(client)

    def decorate(fn: F) -> F:
        name = f"{fn.__module__}.{fn.__qualname__}"
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        default_reason = doc[0] if doc else f"The agent calls {fn.__qualname__}()"

        def ask(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            options: dict[str, Any] = {
                "reason": _resolve(reason, args, kwargs) if reason is not None else default_reason,
                "title": _resolve(title, args, kwargs),
                "labels": _resolve(labels, args, kwargs),
                "on_behalf_of": _resolve(on_behalf_of, args, kwargs),
                "context": _resolve(context, args, kwargs),
                "diff": _resolve(diff, args, kwargs),
                "payload": _resolve(payload, args, kwargs) if payload is not None else call_payload(fn, args, kwargs),
                "idempotency_key": _resolve(idempotency_key, args, kwargs),
                "ttl": ttl,
            }
            if timeout is not _UNSET:
                options["timeout"] = timeout
            target = _resolve(resource, args, kwargs) if resource is not None else f"python://{name}"
            return {"action": action, "resource": str(target), **options}

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                signoff = clients.asynchronous()
                asked = ask(args, kwargs)
                approval = await signoff.request_approval(asked.pop("action"), asked.pop("resource"), **asked)
                await signoff.start(approval.id)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    try:
                        await signoff.report(approval.id, "failed", failure_detail(error), receipt=approval.receipt)
                    except SignoffError as report_error:
                        log.warning("signoff: could not report request %s as failed: %s", approval.id, report_error)
                    raise
                try:
                    await signoff.report(approval.id, "executed", receipt=approval.receipt)
                except SignoffError as report_error:
                    log.warning("signoff: could not report request %s as executed: %s", approval.id, report_error)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            signoff = clients.sync()
            asked = ask(args, kwargs)
            approval = signoff.request_approval(asked.pop("action"), asked.pop("resource"), **asked)
            signoff.start(approval.id)
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                try:
                    signoff.report(approval.id, "failed", failure_detail(error), receipt=approval.receipt)
                except SignoffError as report_error:
                    log.warning("signoff: could not report request %s as failed: %s", approval.id, report_error)
                raise
            try:
                signoff.report(approval.id, "executed", receipt=approval.receipt)
            except SignoffError as report_error:
                log.warning("signoff: could not report request %s as executed: %s", approval.id, report_error)
            return result

        return run  # type: ignore[return-value]

    return decorate
