"""OpenAI Agents SDK: Signoff's reviewers answer the run's tool approvals (`needs_approval`).

    from signoff.openai_agents import SignoffApprovals

    @function_tool(needs_approval=True)
    def drop_table(table: str) -> str: ...

    result = await SignoffApprovals().run(agent, "Drop the users table")

`run` is `Runner.run` that answers every interruption: each tool call waiting for approval
becomes a Signoff request (action `openai_agents.<tool>`, the call's arguments as payload),
approved or rejected as the reviewers decide, and the run resumes. A rejection carries the
reviewer's comment to the model (`rejection_message`), so it can adapt. Once an approved call
has run, its outcome is reported (`failed` when the tool answered the SDK's error message).
For a run you resume yourself, `await signoff.resolve(result)` answers the interruptions and
returns the `RunState` to pass to `Runner.run`. Install with `pip install 'signoff[openai-agents]'`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional, Union

try:
    from agents import Agent, RunResult, Runner, RunState, ToolApprovalItem, ToolCallOutputItem
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("signoff.openai_agents needs the OpenAI Agents SDK: pip install 'signoff[openai-agents]'") from err

from ._adapters import action_name, areport, clip, denial_message, log
from ._async_client import AsyncSignoff
from ._common import DEFAULT_TIMEOUT, Seconds
from ._errors import NotApproved, SignoffError

__all__ = ["SignoffApprovals"]

ItemText = Union[str, Callable[[str, dict[str, Any]], str], None]

# What the SDK tells the model when a function tool raised (its default failure_error_function).
TOOL_ERROR = "An error occurred while running the tool"


def _raw(item: Any, name: str) -> Any:
    raw = getattr(item, "raw_item", None)
    if isinstance(raw, dict):
        return raw.get(name)
    return getattr(raw, name, None)


def _arguments(item: ToolApprovalItem) -> dict[str, Any]:
    arguments = _raw(item, "arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {"arguments": arguments}
        return parsed if isinstance(parsed, dict) else {"arguments": parsed}
    return dict(arguments) if isinstance(arguments, dict) else {}


class SignoffApprovals:
    """Answers an OpenAI Agents run's tool approvals with Signoff.

    `action` (default `openai_agents.<tool>`), `resource` (default
    `openai_agents://<agent>/<tool>`) and `reason` may be text or a function of the tool's
    name and arguments. `client` is an `AsyncSignoff` (by default one from `SIGNOFF_SERVER`
    and `SIGNOFF_AGENT_KEY`).
    """

    def __init__(
        self,
        client: Optional[AsyncSignoff] = None,
        *,
        action: ItemText = None,
        resource: ItemText = None,
        reason: ItemText = None,
        labels: Optional[dict[str, str]] = None,
        timeout: Optional[Seconds] = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.action = action
        self.resource = resource
        self.reason = reason
        self.labels = labels
        self.timeout = timeout
        # Approved calls not yet reported: call_id -> (request id, receipt).
        self._approved: dict[str, tuple[str, Optional[str]]] = {}

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncSignoff]:
        if self.client is not None:
            yield self.client
            return
        async with AsyncSignoff() as client:
            yield client

    def _text(self, value: ItemText, tool: str, arguments: dict[str, Any], default: str) -> str:
        if value is None:
            return default
        return value(tool, arguments) if callable(value) else value

    async def run(self, agent: Agent[Any], input: Any, **options: Any) -> RunResult:
        """`Runner.run(agent, input, **options)`, answering every tool approval with Signoff."""
        result = await Runner.run(agent, input, **options)
        while True:
            await self._report(result)
            if not result.interruptions:
                return result
            state = await self.resolve(result)
            result = await Runner.run(agent, state, **options)

    async def resolve(self, result: RunResult) -> RunState[Any]:
        """Answers the result's interruptions (approve or reject, as decided) and returns the
        state to resume with (`Runner.run(agent, state)`)."""
        state = result.to_state()
        async with self._client() as client:
            for item in result.interruptions:
                await self._decide(client, state, item, result)
        return state

    async def _decide(self, client: AsyncSignoff, state: RunState[Any], item: ToolApprovalItem, result: RunResult) -> None:
        tool = str(item.tool_name or _raw(item, "name") or "tool")
        arguments = _arguments(item)
        agent_name = getattr(getattr(item, "agent", None), "name", None) or getattr(result.last_agent, "name", "agent")
        call_id = _raw(item, "call_id")
        try:
            approval = await client.request_approval(
                self._text(self.action, tool, arguments, action_name("openai_agents", tool)),
                self._text(self.resource, tool, arguments, f"openai_agents://{agent_name}/{tool}"),
                reason=self._text(self.reason, tool, arguments, f"The {agent_name} agent's model called the tool {tool}"),
                title=clip(f"{tool}({json.dumps(arguments, ensure_ascii=False)})", 200),
                payload=arguments,
                labels=self.labels,
                context={"framework": "openai_agents", "agent": agent_name, "call_id": call_id},
                timeout=self.timeout,
            )
            await client.start(approval.id)
        except NotApproved as refused:
            state.reject(item, rejection_message=denial_message(refused))
            return
        except SignoffError as failed:
            log.warning("signoff: no approval for %s: %s", tool, failed)
            state.reject(item, rejection_message=denial_message(failed))
            return
        if isinstance(call_id, str):
            self._approved[call_id] = (approval.id, approval.receipt)
        state.approve(item)

    async def _report(self, result: RunResult) -> None:
        if not self._approved:
            return
        outputs = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
        done = [(call_id, item) for item in outputs if (call_id := _raw(item, "call_id")) in self._approved]
        if not done:
            return
        async with self._client() as client:
            for call_id, item in done:
                request_id, receipt = self._approved.pop(call_id)
                output = str(item.output)
                error = RuntimeError(clip(output, 4000)) if output.startswith(TOOL_ERROR) else None
                await areport(client, request_id, error, receipt)
