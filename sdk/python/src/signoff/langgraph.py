"""LangGraph: tool calls wait for Signoff's reviewers inside `ToolNode`.

    from signoff.langgraph import SignoffToolCalls

    tools = SignoffToolCalls().tool_node([drop_table, read_table])   # a ToolNode, every call gated

or, on a `ToolNode` of your own, `ToolNode(tools, wrap_tool_call=signoff.wrap_tool_call,
awrap_tool_call=signoff.awrap_tool_call)`. Each gated call becomes a Signoff request (action
`langgraph.<tool>`, the call's arguments as payload) and the node waits for the decision.
Approved: the tool runs and its outcome is reported. Denied: the tool does not run, and its
`ToolMessage` (status `error`) carries the reviewer's comment, so the model can adapt.
Install with `pip install 'signoff[langgraph]'`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Optional, Union

try:
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import BaseTool
    from langgraph.prebuilt import ToolNode
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("signoff.langgraph needs LangGraph: pip install 'signoff[langgraph]'") from err

from ._adapters import action_name, clip, denial_message, log
from ._async_client import AsyncSignoff
from ._client import Signoff
from ._common import DEFAULT_TIMEOUT, Seconds
from ._decorator import _Clients, failure_detail
from ._errors import NotApproved, SignoffError
from ._models import Approval

__all__ = ["SignoffToolCalls"]

ToolCallText = Union[str, Callable[[dict[str, Any]], str], None]
Result = Union[ToolMessage, "Command[Any]"]


class SignoffToolCalls:
    """Tool-call interceptors for LangGraph's `ToolNode` that ask Signoff first.

    `tools`: the names of the tools to gate (default: every tool of the node). `action`
    (default `langgraph.<tool>`), `resource` (default `langgraph://tool/<tool>`) and
    `reason` may be text or a function of the tool call (`{"name", "args", "id"}`).
    `client`: a `Signoff` or `AsyncSignoff` (default: from `SIGNOFF_SERVER` and
    `SIGNOFF_AGENT_KEY`); the sync and async paths each get the client they need.
    """

    def __init__(
        self,
        client: Union[Signoff, AsyncSignoff, None] = None,
        *,
        tools: Optional[Collection[str]] = None,
        action: ToolCallText = None,
        resource: ToolCallText = None,
        reason: ToolCallText = None,
        labels: Optional[dict[str, str]] = None,
        timeout: Optional[Seconds] = DEFAULT_TIMEOUT,
    ) -> None:
        self._clients = _Clients(client)
        self.tools = None if tools is None else frozenset(tools)
        self.action = action
        self.resource = resource
        self.reason = reason
        self.labels = labels
        self.timeout = timeout

    def tool_node(self, tools: Sequence[Union[BaseTool, Callable[..., Any]]], **options: Any) -> ToolNode:
        """A `ToolNode` whose calls wait for Signoff."""
        return ToolNode(tools, wrap_tool_call=self.wrap_tool_call, awrap_tool_call=self.awrap_tool_call, **options)

    def _gated(self, request: ToolCallRequest) -> bool:
        return self.tools is None or request.tool_call["name"] in self.tools

    def _text(self, value: ToolCallText, call: dict[str, Any], default: str) -> str:
        if value is None:
            return default
        return value(call) if callable(value) else value

    def _fields(self, request: ToolCallRequest) -> dict[str, Any]:
        call: dict[str, Any] = dict(request.tool_call)
        name = str(call["name"])
        return {
            "action": self._text(self.action, call, action_name("langgraph", name)),
            "resource": self._text(self.resource, call, f"langgraph://tool/{name}"),
            "reason": self._text(self.reason, call, f"The graph's model called the tool {name}"),
            "title": clip(f"{name}({', '.join(f'{k}={v!r}' for k, v in (call.get('args') or {}).items())})", 200),
            "payload": call.get("args") or {},
            "labels": self.labels,
            "context": {"framework": "langgraph", "tool_call_id": call.get("id")},
            "timeout": self.timeout,
        }

    @staticmethod
    def _refused(request: ToolCallRequest, error: BaseException) -> ToolMessage:
        return ToolMessage(
            content=denial_message(error),
            tool_call_id=str(request.tool_call.get("id") or ""),
            name=str(request.tool_call["name"]),
            status="error",
        )

    @staticmethod
    def _outcome(result: Result) -> Optional[BaseException]:
        if isinstance(result, ToolMessage) and result.status == "error":
            return RuntimeError(clip(str(result.content), 4000))
        return None

    def wrap_tool_call(self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], Result]) -> Result:
        """`ToolNode(wrap_tool_call=…)`: the sync path."""
        if not self._gated(request):
            return execute(request)
        client = self._clients.sync()
        fields = self._fields(request)
        try:
            approval: Approval = client.request_approval(fields.pop("action"), fields.pop("resource"), **fields)
            client.start(approval.id)
        except NotApproved as refused:
            return self._refused(request, refused)
        except SignoffError as failed:
            log.warning("signoff: no approval for %s: %s", request.tool_call["name"], failed)
            return self._refused(request, failed)
        try:
            result = execute(request)
        except BaseException as error:
            self._report_sync(client, approval, error)
            raise
        self._report_sync(client, approval, self._outcome(result))
        return result

    async def awrap_tool_call(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], Awaitable[Result]]
    ) -> Result:
        """`ToolNode(awrap_tool_call=…)`: the async path."""
        if not self._gated(request):
            return await execute(request)
        client = self._clients.asynchronous()
        fields = self._fields(request)
        try:
            approval: Approval = await client.request_approval(fields.pop("action"), fields.pop("resource"), **fields)
            await client.start(approval.id)
        except NotApproved as refused:
            return self._refused(request, refused)
        except SignoffError as failed:
            log.warning("signoff: no approval for %s: %s", request.tool_call["name"], failed)
            return self._refused(request, failed)
        try:
            result = await execute(request)
        except BaseException as error:
            await self._report_async(client, approval, error)
            raise
        await self._report_async(client, approval, self._outcome(result))
        return result

    @staticmethod
    def _report_sync(client: Signoff, approval: Approval, error: Optional[BaseException]) -> None:
        try:
            if error is None:
                client.report(approval.id, "executed", receipt=approval.receipt)
            else:
                client.report(approval.id, "failed", failure_detail(error), receipt=approval.receipt)
        except SignoffError as report_error:
            log.warning("signoff: could not report request %s: %s", approval.id, report_error)

    @staticmethod
    async def _report_async(client: AsyncSignoff, approval: Approval, error: Optional[BaseException]) -> None:
        try:
            if error is None:
                await client.report(approval.id, "executed", receipt=approval.receipt)
            else:
                await client.report(approval.id, "failed", failure_detail(error), receipt=approval.receipt)
        except SignoffError as report_error:
            log.warning("signoff: could not report request %s: %s", approval.id, report_error)
