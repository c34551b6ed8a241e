"""Claude Agent SDK: Signoff's reviewers answer the agent's permission prompts.

    from signoff.claude_agent_sdk import SignoffPermissions

    options = SignoffPermissions().options(ClaudeAgentOptions(allowed_tools=["Read"]))

Each tool call the CLI would ask permission for reaches `can_use_tool`, which submits it to
Signoff (the same actions and resources as `signoff hook claude-code`: `claude_code.bash`
with the command, `claude_code.write` with the file, …) and waits. Approved: the tool runs,
and the `PostToolUse` / `PostToolUseFailure` hooks report its outcome. Denied: the model is
told the reviewer's comment as the permission's denial message. Install with
`pip install 'signoff[claude-agent-sdk]'`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional

try:
    from claude_agent_sdk import (
        ClaudeAgentOptions,
        HookContext,
        HookMatcher,
        PermissionResultAllow,
        PermissionResultDeny,
        ToolPermissionContext,
    )
    from claude_agent_sdk.types import HookEvent, HookInput, HookJSONOutput, PermissionResult
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("signoff.claude_agent_sdk needs the Claude Agent SDK: pip install 'signoff[claude-agent-sdk]'") from err

from ._adapters import action_name, areport, clip, denial_message, log, resource_for
from ._async_client import AsyncSignoff
from ._common import DEFAULT_TIMEOUT, Seconds
from ._errors import NotApproved, SignoffError

__all__ = ["SignoffPermissions", "action_for", "request_for"]

# Tools and the input field that names what they touch, as the Claude Code hook maps them.
TOOL_ACTIONS: dict[str, tuple[str, str]] = {
    "Bash": ("claude_code.bash", "command"),
    "Write": ("claude_code.write", "file_path"),
    "Edit": ("claude_code.write", "file_path"),
    "MultiEdit": ("claude_code.write", "file_path"),
    "NotebookEdit": ("claude_code.write", "notebook_path"),
    "Read": ("claude_code.read", "file_path"),
    "Glob": ("claude_code.read", "pattern"),
    "Grep": ("claude_code.read", "pattern"),
    "WebFetch": ("claude_code.web", "url"),
    "WebSearch": ("claude_code.web", "query"),
    "Task": ("claude_code.task", "description"),
}


def action_for(tool: str) -> str:
    """`claude_code.bash`, `claude_code.write`, …; `claude_code.<name>` for any other tool."""
    known = TOOL_ACTIONS.get(tool)
    return known[0] if known else action_name("claude_code", tool or "unknown")


def request_for(tool: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    """The request fields (action, resource, title, reason) for one tool call."""
    known = TOOL_ACTIONS.get(tool)
    subject = tool_input.get(known[1]) if known else None
    if not isinstance(subject, str) or not subject.strip():
        subject = None
    description = tool_input.get("description")
    first_line = subject.strip().splitlines()[0] if subject else ""
    return {
        "action": action_for(tool),
        "resource": resource_for(subject or tool),
        "title": clip(f"{tool}: {first_line}" if subject else f"Claude uses {tool}", 200),
        "reason": description if isinstance(description, str) and description.strip() else f"Claude wants to use {tool}.",
    }


class SignoffPermissions:
    """`can_use_tool` and outcome hooks for `ClaudeAgentOptions`, answered by Signoff's reviewers.

    `client` is an `AsyncSignoff` (by default one from `SIGNOFF_SERVER` and
    `SIGNOFF_AGENT_KEY`); `timeout` bounds each wait (then the request is cancelled and the
    tool denied); `labels` go on every request; `describe(tool, input)` may return other
    request fields (`action`, `resource`, `title`, `reason`, `labels`).
    """

    def __init__(
        self,
        client: Optional[AsyncSignoff] = None,
        *,
        timeout: Optional[Seconds] = DEFAULT_TIMEOUT,
        labels: Optional[dict[str, str]] = None,
        describe: Optional[Callable[[str, dict[str, Any]], dict[str, Any]]] = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.labels = labels
        self.describe = describe
        # Approved calls still running: tool_use_id -> (request id, receipt).
        self._running: dict[str, tuple[str, Optional[str]]] = {}

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncSignoff]:
        if self.client is not None:
            yield self.client
            return
        async with AsyncSignoff() as client:
            yield client

    async def can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """The `can_use_tool` callback: allow once approved, otherwise deny with the reason."""
        fields = request_for(tool_name, tool_input)
        if self.describe is not None:
            fields.update(self.describe(tool_name, tool_input))
        labels = {**(self.labels or {}), **(fields.pop("labels", None) or {})}
        async with self._client() as client:
            try:
                approval = await client.request_approval(
                    fields.pop("action"),
                    fields.pop("resource"),
                    payload=tool_input,
                    labels=labels or None,
                    context={"framework": "claude_agent_sdk", "tool_use_id": context.tool_use_id},
                    timeout=self.timeout,
                    **fields,
                )
                await client.start(approval.id)
            except NotApproved as refused:
                return PermissionResultDeny(message=denial_message(refused))
            except SignoffError as failed:
                log.warning("signoff: no approval for %s: %s", tool_name, failed)
                return PermissionResultDeny(message=denial_message(failed))
        if context.tool_use_id:
            self._running[context.tool_use_id] = (approval.id, approval.receipt)
        return PermissionResultAllow()

    async def _report(self, tool_use_id: Optional[str], error: Optional[BaseException]) -> None:
        running = self._running.pop(tool_use_id, None) if tool_use_id else None
        if running is None:
            return
        async with self._client() as client:
            await areport(client, running[0], error, running[1])

    async def post_tool_use(self, input: HookInput, tool_use_id: Optional[str], context: HookContext) -> HookJSONOutput:
        """`PostToolUse` hook: the approved call ran; report it executed."""
        await self._report(tool_use_id or str(input.get("tool_use_id") or ""), None)
        return {}

    async def post_tool_use_failure(
        self, input: HookInput, tool_use_id: Optional[str], context: HookContext
    ) -> HookJSONOutput:
        """`PostToolUseFailure` hook: the approved call failed; report it with the error."""
        error = RuntimeError(str(input.get("error") or "the tool failed"))
        await self._report(tool_use_id or str(input.get("tool_use_id") or ""), error)
        return {}

    @property
    def hooks(self) -> dict[HookEvent, list[HookMatcher]]:
        return {
            "PostToolUse": [HookMatcher(hooks=[self.post_tool_use])],
            "PostToolUseFailure": [HookMatcher(hooks=[self.post_tool_use_failure])],
        }

    def options(self, options: Optional[ClaudeAgentOptions] = None) -> ClaudeAgentOptions:
        """`options` (or new ones) with `can_use_tool` and the outcome hooks added."""
        base = options or ClaudeAgentOptions()
        hooks: dict[HookEvent, list[HookMatcher]] = {k: list(v) for k, v in (base.hooks or {}).items()}
        for event, matchers in self.hooks.items():
            hooks.setdefault(event, []).extend(matchers)
        return dataclasses.replace(base, can_use_tool=self.can_use_tool, hooks=hooks)
