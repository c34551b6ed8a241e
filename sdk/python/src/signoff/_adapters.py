"""What the framework adapters share: names, messages for the model, and reporting."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from typing import Any, Optional

from ._async_client import AsyncSignoff
from ._errors import Cancelled, Denied, Expired, NotApproved, SignoffError, TimedOut

log = logging.getLogger("signoff")


def action_name(prefix: str, tool: str) -> str:
    """`prefix.tool` as a Signoff action (dotted lower-case, `[a-z0-9_-]` between dots)."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "_", tool.lower()).strip("_") or "tool"
    return f"{prefix}.{cleaned}"[:128]


def denial_message(error: BaseException) -> str:
    """What the model is told instead of the tool's result when the call was not approved."""
    if isinstance(error, Denied):
        if error.by_policy:
            return f"This tool call was denied by policy and was not run: {error.comment}"
        who = ", ".join(d.reviewer.display_name for d in error.decisions)
        return f"This tool call was denied by a human reviewer ({who}) and was not run. Their comment: {error.comment}"
    if isinstance(error, Expired):
        return "This tool call was not run: no reviewer decided before the approval request expired."
    if isinstance(error, TimedOut):
        return "This tool call was not run: no reviewer decided in time, so the approval request was cancelled."
    if isinstance(error, Cancelled):
        return "This tool call was not run: its approval request was cancelled."
    if isinstance(error, NotApproved):
        return f"This tool call was not run: {error}"
    return f"This tool call was not run: no human approval could be obtained ({error})."


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def areport(client: AsyncSignoff, request_id: str, error: Optional[BaseException], receipt: Optional[str]) -> None:
    try:
        if error is None:
            await client.report(request_id, "executed", receipt=receipt)
        else:
            detail = {"error": clip(f"{type(error).__name__}: {error}", 4000)}
            await client.report(request_id, "failed", detail, receipt=receipt)
    except SignoffError as report_error:
        log.warning("signoff: could not report the outcome of request %s: %s", request_id, report_error)


def jsonable_prompt(prompt: Any) -> Any:
    if isinstance(prompt, str):
        return clip(prompt, 2000)
    return None


RESOURCE_CHARS = 512
BOUND_MARK = "… sha256:"
_BOUND = re.compile(re.escape(BOUND_MARK) + r"[0-9a-f]{64}$")


def _control(c: str) -> bool:
    return unicodedata.category(c) == "Cc" and c not in "\n\t\r"


def resource_for(subject: str) -> str:
    """A resource for what a tool call touches, as `signoff hook claude-code` makes it.

    A subject the API holds as it is (at most 512 characters, no control characters but
    newline and tab) is the resource; any other keeps its readable start, then `… sha256:`
    and the SHA-256 of the whole subject, so that a grant for one long command never covers
    another that starts the same way.
    """
    as_is = (
        len(subject) <= RESOURCE_CHARS
        and subject.strip() != ""
        and not any(_control(c) for c in subject)
        and not _BOUND.search(subject)
    )
    if as_is:
        return subject
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()
    room = RESOURCE_CHARS - len(BOUND_MARK) - 64
    start = "".join("\ufffd" if _control(c) else c for c in subject)[:room]
    return f"{start}{BOUND_MARK}{digest}"
