"""Pydantic AI, driven by its own scripted `FunctionModel`: the tool runs only once approved,
and a denial's comment reaches the model as the tool's result."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.messages import ModelMessage  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

from conftest import Stack  # noqa: E402
from signoff import AsyncSignoff  # noqa: E402
from signoff.pydantic_ai import SignoffApprovals  # noqa: E402

pool = ThreadPoolExecutor(max_workers=2)


class ScriptedModel:
    """Calls `tool` with `args` once, then answers with what the tool returned."""

    def __init__(self, tool: str, args: dict[str, Any]) -> None:
        self.tool, self.args = tool, args
        self.tool_results: list[Any] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                self.tool_results.append(part.content)
                return ModelResponse(parts=[TextPart(f"The tool said: {part.content}")])
        return ModelResponse(parts=[ToolCallPart(self.tool, self.args, tool_call_id="call-1")])


def make_agent(stack: Stack, run: str, model: ScriptedModel, ran: list[str], **options: Any) -> Agent[None, str]:
    approvals = SignoffApprovals(
        client=None if options.pop("from_env", False) else AsyncSignoff(stack.base_url, stack.key, timeout=30),
        resource=lambda call: f"test://pydantic-ai/{run}/{call.tool_name}",
        **options,
    )
    agent = Agent(FunctionModel(model), name="ops", capabilities=[approvals])

    @agent.tool_plain(requires_approval=True)
    def drop_table(table: str) -> str:
        ran.append(table)
        return f"dropped {table}"

    @agent.tool_plain
    def read_table(table: str) -> str:
        ran.append(f"read {table}")
        return f"3 rows in {table}"

    return agent


def test_tool_runs_only_after_approval(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_SERVER", stack.base_url)
    monkeypatch.setenv("SIGNOFF_AGENT_KEY", stack.key)
    run, ran = secrets.token_hex(4), []  # type: list[str]
    model = ScriptedModel("drop_table", {"table": "users"})
    agent = make_agent(stack, run, model, ran, from_env=True)
    result = pool.submit(agent.run_sync, "drop the users table")
    pending = stack.reviewer.pending(f"test://pydantic-ai/{run}/drop_table")
    shown = stack.reviewer.get(pending["id"])
    assert shown["action"] == "pydantic_ai.drop_table"
    assert shown["payload"] == {"table": "users"}
    assert shown["context"]["prompt"] == "drop the users table"
    time.sleep(0.3)
    assert ran == [], "the tool ran before anyone approved"
    stack.reviewer.decide(pending["id"], "approve", "ok")
    assert result.result(timeout=30).output == "The tool said: dropped users"
    assert ran == ["users"]
    assert stack.reviewer.get(pending["id"])["status"] == "executed"


def test_denial_comment_reaches_the_model(stack: Stack) -> None:
    run, ran = secrets.token_hex(4), []  # type: list[str]
    model = ScriptedModel("drop_table", {"table": "payments"})
    agent = make_agent(stack, run, model, ran)
    result = pool.submit(agent.run_sync, "drop the payments table")
    pending = stack.reviewer.pending(f"test://pydantic-ai/{run}/drop_table")
    stack.reviewer.decide(pending["id"], "deny", "archive it to cold storage instead")
    output = result.result(timeout=30).output
    assert ran == []
    assert len(model.tool_results) == 1 and "archive it to cold storage instead" in model.tool_results[0]
    assert "archive it to cold storage instead" in output
    assert stack.reviewer.get(pending["id"])["status"] == "denied"


def test_named_tools_are_gated_too(stack: Stack) -> None:
    # `read_table` has no requires_approval; `tools=` gates it. `sdk.read` is allowed by policy.
    run, ran = secrets.token_hex(4), []  # type: list[str]
    model = ScriptedModel("read_table", {"table": "orders"})
    agent = make_agent(stack, run, model, ran, tools=["read_table"], action="sdk.read")
    assert agent.run_sync("count orders").output == "The tool said: 3 rows in orders"
    assert ran == ["read orders"]
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    mine = [r for r in listed.json()["items"] if r["resource"] == f"test://pydantic-ai/{run}/read_table"]
    assert [r["status"] for r in mine] == ["executed"]
