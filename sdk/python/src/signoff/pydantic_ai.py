"""Pydantic AI: human reviewers answer an agent's approval-required tool calls.

    from signoff.pydantic_ai import SignoffApprovals

    agent = Agent(model, capabilities=[SignoffApprovals()])

    @agent.tool_plain(requires_approval=True)
    def drop_table(table: str) -> str: ...

Every tool call that needs approval (`requires_approval=True`, a tool raising
`ApprovalRequired`, or a tool named in `tools=`) becomes a Signoff request (action
`pydantic_ai.<tool>`, the call's arguments as payload) and the run waits for the decision.
Approved: the tool runs, and its outcome is reported. Denied: the tool does not run and the
model gets the reviewer's comment as the tool's result, so it can adapt. Install with
`pip install 'signoff[pydantic-ai]'`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Optional, Union

try:
    from pydantic_ai import RunContext, ToolApproved, ToolCallPart, ToolDenied
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import ApprovalRequired
    from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolDefinition
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("signoff.pydantic_ai needs Pydantic AI: pip install 'signoff[pydantic-ai]'") from err

from ._adapters import action_name, areport, clip, denial_message, jsonable_prompt, log
from ._async_client import AsyncSignoff
from ._common import DEFAULT_TIMEOUT, Seconds
from ._errors import NotApproved, SignoffError

__all__ = ["SignoffApprovals"]

_META = "signoff"

ToolText = Union[str, Callable[[ToolCallPart], str], None]


@dataclass
class SignoffApprovals(AbstractCapability[Any]):
    """A Pydantic AI capability: Signoff's reviewers approve or deny the tool calls that need it.

    `action` (default `pydantic_ai.<tool>`), `resource` (default `pydantic_ai://<agent>/<tool>`)
    and `reason` may be text or a function of the `ToolCallPart`. `tools` names tools to
    gate even without `requires_approval`. `client` is an `AsyncSignoff` (by default one
    from `SIGNOFF_SERVER` and `SIGNOFF_AGENT_KEY`, made for each use so it works under
    `run_sync` too).
    """

    client: Optional[AsyncSignoff] = None
    action: ToolText = None
    resource: ToolText = None
    reason: ToolText = None
    labels: Optional[dict[str, str]] = None
    tools: Collection[str] = field(default_factory=tuple)
    timeout: Optional[Seconds] = DEFAULT_TIMEOUT

    @classmethod
    def get_serialization_name(cls) -> Optional[str]:
        return None

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncSignoff]:
        if self.client is not None:
            yield self.client
            return
        async with AsyncSignoff() as client:
            yield client

    def _text(self, value: ToolText, call: ToolCallPart, default: str) -> str:
        if value is None:
            return default
        return value(call) if callable(value) else value

    async def handle_deferred_tool_calls(
        self, ctx: RunContext[Any], *, requests: DeferredToolRequests
    ) -> Optional[DeferredToolResults]:
        if not requests.approvals:
            return None
        async with self._client() as client:
            answers = await asyncio.gather(*(self._decide(client, ctx, call) for call in requests.approvals))
        approvals: dict[str, Any] = {}
        metadata: dict[str, dict[str, Any]] = {}
        answered_by: dict[str, str] = {}
        for call, (answer, who, meta) in zip(requests.approvals, answers):
            approvals[call.tool_call_id] = answer
            if meta:
                metadata[call.tool_call_id] = {_META: meta}
            if who:
                answered_by[call.tool_call_id] = who
        return requests.build_results(approvals=approvals, metadata=metadata, answered_by=answered_by)

    async def _decide(
        self, client: AsyncSignoff, ctx: RunContext[Any], call: ToolCallPart
    ) -> tuple[Any, Optional[str], Optional[dict[str, Any]]]:
        agent_name = getattr(ctx.agent, "name", None) or "agent"
        try:
            approval = await client.request_approval(
                self._text(self.action, call, action_name("pydantic_ai", call.tool_name)),
                self._text(self.resource, call, f"pydantic_ai://{agent_name}/{call.tool_name}"),
                reason=self._text(self.reason, call, f"The {agent_name} agent's model called the tool {call.tool_name}"),
                title=clip(f"{call.tool_name}({call.args_as_json_str()})", 200),
                payload=call.args_as_dict(),
                labels=self.labels,
                context={
                    "framework": "pydantic_ai",
                    "run_id": ctx.run_id,
                    "tool_call_id": call.tool_call_id,
                    "prompt": jsonable_prompt(ctx.prompt),
                },
                timeout=self.timeout,
            )
        except NotApproved as refused:
            return ToolDenied(denial_message(refused)), None, None
        except SignoffError as failed:
            log.warning("signoff: no approval for %s: %s", call.tool_name, failed)
            return ToolDenied(denial_message(failed)), None, None
        who = ", ".join(a.display_name for a in approval.approvers) or f"policy {approval.policy.name}"
        return ToolApproved(), who, {"request_id": approval.id, "receipt": approval.receipt}

    @staticmethod
    def _approved(ctx: RunContext[Any]) -> Optional[dict[str, Any]]:
        meta = ctx.tool_call_metadata
        if isinstance(meta, dict) and isinstance(meta.get(_META), dict):
            return dict(meta[_META])
        return None

    async def before_tool_execute(
        self, ctx: RunContext[Any], *, call: ToolCallPart, tool_def: ToolDefinition, args: Any
    ) -> Any:
        if call.tool_name in self.tools and not ctx.tool_call_approved:
            raise ApprovalRequired()
        approved = self._approved(ctx)
        if approved:
            async with self._client() as client:
                await client.start(approved["request_id"])
        return args

    async def after_tool_execute(
        self, ctx: RunContext[Any], *, call: ToolCallPart, tool_def: ToolDefinition, args: Any, result: Any
    ) -> Any:
        approved = self._approved(ctx)
        if approved:
            async with self._client() as client:
                await areport(client, approved["request_id"], None, approved.get("receipt"))
        return result

    async def on_tool_execute_error(
        self, ctx: RunContext[Any], *, call: ToolCallPart, tool_def: ToolDefinition, args: Any, error: Exception
    ) -> Any:
        approved = self._approved(ctx)
        if approved:
            async with self._client() as client:
                await areport(client, approved["request_id"], error, approved.get("receipt"))
        raise error
