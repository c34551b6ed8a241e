"""What the sync and async clients share: configuration, request bodies, answers and errors."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import os
import random
import uuid
from typing import Any, Optional, Union
from urllib.parse import urlsplit

import httpx

from ._errors import (
    AlreadyStarted,
    ApiError,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    MismatchedAnswer,
    NotFound,
    Unauthorized,
)
from ._jsonsafe import json_safe
from ._models import Request

Seconds = Union[float, int, _dt.timedelta]
"""A duration: seconds, or a `timedelta`."""

DEFAULT_TIMEOUT = 600.0
"""How long `request_approval` waits for a decision by default (then it cancels the request)."""

MAX_POLL = 55
"""One long-poll's length: under the 60 s idle timeout of common proxies."""

USER_AGENT = "signoff-python/0.1.0"


def seconds(value: Optional[Seconds]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    return float(value)


def resolve_server(server: Optional[str]) -> str:
    server = server or os.environ.get("SIGNOFF_SERVER")
    if not server:
        raise ConfigurationError("no Signoff server: pass server=… or set SIGNOFF_SERVER (e.g. https://signoff.example.com)")
    server = server.strip().rstrip("/")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"SIGNOFF_SERVER {server!r} is not an http(s) URL such as https://signoff.example.com")
    if parts.scheme == "http" and not _loopback(parts.hostname) and os.environ.get("SIGNOFF_ALLOW_INSECURE_HTTP") != "1":
        raise ConfigurationError(
            f"SIGNOFF_SERVER {server!r} is plain http to another machine: the agent key would travel in the clear."
            " Use https://, or set SIGNOFF_ALLOW_INSECURE_HTTP=1 to allow it anyway"
        )
    return server


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_key(key: Optional[str]) -> str:
    key = key or os.environ.get("SIGNOFF_AGENT_KEY")
    if not key:
        raise ConfigurationError(
            "no agent key: pass key=… or set SIGNOFF_AGENT_KEY (`signoff-server agents create --name NAME` prints one)"
        )
    return key.strip()


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def new_idempotency_key() -> str:
    return f"signoff-py-{uuid.uuid4()}"


def default_title(action: str, resource: str) -> str:
    title = f"{action} on {resource}"
    return title if len(title) <= 200 else title[:199] + "…"


def request_body(
    action: str,
    resource: str,
    *,
    reason: Optional[str],
    title: Optional[str],
    payload: Any,
    diff: Any,
    labels: Optional[dict[str, str]],
    on_behalf_of: Optional[str],
    context: Any,
    ttl: Optional[Seconds],
    callback_url: Optional[str],
) -> dict[str, Any]:
    """The body of `POST /api/v1/requests`."""
    body: dict[str, Any] = {
        "action": action,
        "resource": resource,
        "title": title or default_title(action, resource),
    }
    if reason is not None:
        body["reason"] = reason
    if payload is not None:
        body["payload"] = json_safe(payload)
    if diff is not None:
        body["diff"] = diff if isinstance(diff, str) else json_safe(diff)
    if labels:
        body["labels"] = {str(k): str(v) for k, v in labels.items()}
    if on_behalf_of is not None:
        body["on_behalf_of"] = on_behalf_of
    if context is not None:
        body["context"] = json_safe(context)
    ttl_s = seconds(ttl)
    if ttl_s is not None:
        body["ttl_s"] = max(1, int(round(ttl_s)))
    if callback_url is not None:
        body["callback_url"] = callback_url
    return body


def api_error(response: httpx.Response) -> ApiError:
    """The error the server answered, as an exception naming the call, the code and the message."""
    code, message = "http_error", response.reason_phrase or "error"
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()
        if text:
            message = text[:500]
    method, path = response.request.method, response.request.url.path
    status = response.status_code
    kind: type[ApiError]
    if status == 401:
        kind = Unauthorized
        message = f"{message} (check SIGNOFF_AGENT_KEY)"
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = AlreadyStarted if code == "already_started" else Conflict
    elif status in (400, 413, 415, 422):
        kind = InvalidRequest
    else:
        kind = ApiError
    return kind(status, code, message, method, path)


def is_transient(result: Union[httpx.Response, BaseException]) -> bool:
    """A failure worth retrying: the network, a restart, an overloaded or unavailable server."""
    if isinstance(result, httpx.TransportError):
        return True
    if isinstance(result, httpx.Response):
        return result.status_code in (429, 502, 503, 504)
    return False


def retry_after(result: Union[httpx.Response, BaseException], backoff: float) -> float:
    """How long to sleep before the next try: the server's Retry-After, or backoff with jitter."""
    if isinstance(result, httpx.Response):
        value = result.headers.get("Retry-After")
        if value:
            try:
                return max(0.0, min(float(value), 30.0))
            except ValueError:
                pass
    return backoff * (0.5 + random.random() / 2)


def next_backoff(backoff: float) -> float:
    return min(backoff * 2, 2.0)


FIRST_BACKOFF = 0.2


def parse_request(response: httpx.Response) -> Request:
    try:
        data = response.json()
        return Request.from_json(data)
    except (ValueError, KeyError, TypeError) as err:
        raise ApiError(
            response.status_code,
            "unreadable_answer",
            f"the server's answer is not a request: {err}",
            response.request.method,
            response.request.url.path,
        ) from err


def check_same(request: Request, *, id: Optional[str] = None, body: Optional[dict[str, Any]] = None) -> Request:
    """Refuses an answer about another request or action than the one asked about."""
    if id is not None and request.id != id:
        raise MismatchedAnswer(f"asked about request {id}, the server answered about {request.id}")
    if body is not None and (request.action != body["action"] or request.resource != body["resource"]):
        raise MismatchedAnswer(
            f"submitted {body['action']} on {body['resource']}, the server answered about"
            f" {request.action} on {request.resource} (request {request.id})"
        )
    return request


def describe(response: Union[httpx.Response, BaseException]) -> str:
    if isinstance(response, httpx.Response):
        return f"HTTP {response.status_code}"
    return f"{type(response).__name__}: {response}" if str(response) else type(response).__name__


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
