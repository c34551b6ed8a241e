"""OpenAI Agents SDK, driven by its own `ScriptedModel`: a tool with `needs_approval` runs only
once a reviewer approved it, and a rejection's comment reaches the model."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, function_tool, set_tracing_disabled  # noqa: E402
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call  # noqa: E402

from conftest import Stack  # noqa: E402
from signoff import AsyncSignoff  # noqa: E402
from signoff.openai_agents import SignoffApprovals  # noqa: E402

set_tracing_disabled(True)  # no trace export: these tests reach no network


def tool_output(call: Any) -> str:
    """What the model was sent as the tool's output on its second turn."""
    for item in reversed(call.input if isinstance(call.input, list) else []):
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            return str(item.get("output"))
    return "(no tool output)"


def scripted(tool: str, args: dict[str, Any], seen: list[str]) -> ScriptedModel:
    def answer(call: Any) -> Any:
        seen.append(tool_output(call))
        return [assistant_message(f"The tool said: {seen[-1]}")]

    return ScriptedModel([[function_call(tool, args, call_id="call_1")], ModelStep.respond(answer)])


def make_agent(model: ScriptedModel, ran: list[str]) -> Agent[Any]:
    @function_tool(needs_approval=True)
    def drop_table(table: str) -> str:
        """Drop a table."""
        ran.append(table)
        return f"dropped {table}"

    @function_tool(needs_approval=True)
    def vacuum(table: str) -> str:
        """Vacuum a table."""
        ran.append(f"vacuum {table}")
        raise RuntimeError("disk full")

    return Agent(name="dba", instructions="You manage tables.", model=model, tools=[drop_table, vacuum])


def review(stack: Stack, resource: str, verdict: str, comment: str, ran: list[str]) -> Any:
    async def act() -> None:
        pending = await asyncio.to_thread(stack.reviewer.pending, resource)
        await asyncio.sleep(0.3)
        assert ran == [], "the tool ran before anyone decided"
        await asyncio.to_thread(stack.reviewer.decide, pending["id"], verdict, comment)

    return act()


def statuses(stack: Stack, resource: str) -> list[str]:
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    return [r["status"] for r in listed.json()["items"] if r["resource"] == resource]


def test_tool_runs_only_after_approval(stack: Stack) -> None:
    run, ran, seen = secrets.token_hex(4), [], []  # type: str, list[str], list[str]
    resource = f"test://openai-agents/{run}/drop_table"
    signoff = SignoffApprovals(
        AsyncSignoff(stack.base_url, stack.key, timeout=30), resource=lambda tool, args: f"test://openai-agents/{run}/{tool}"
    )
    agent = make_agent(scripted("drop_table", {"table": "users"}, seen), ran)

    async def scenario() -> Any:
        result, _ = await asyncio.gather(
            signoff.run(agent, "Drop the users table"), review(stack, resource, "approve", "ok", ran)
        )
        return result

    result = asyncio.run(scenario())
    assert ran == ["users"]
    assert result.final_output == "The tool said: dropped users"
    assert statuses(stack, resource) == ["executed"]


def test_rejection_comment_reaches_the_model(stack: Stack) -> None:
    run, ran, seen = secrets.token_hex(4), [], []  # type: str, list[str], list[str]
    resource = f"test://openai-agents/{run}/drop_table"
    signoff = SignoffApprovals(
        AsyncSignoff(stack.base_url, stack.key, timeout=30), resource=lambda tool, args: f"test://openai-agents/{run}/{tool}"
    )
    agent = make_agent(scripted("drop_table", {"table": "payments"}, seen), ran)

    async def scenario() -> Any:
        result, _ = await asyncio.gather(
            signoff.run(agent, "Drop payments"), review(stack, resource, "deny", "finance still reads it", ran)
        )
        return result

    result = asyncio.run(scenario())
    assert ran == []
    assert len(seen) == 1 and "finance still reads it" in seen[0]
    assert "finance still reads it" in result.final_output
    assert statuses(stack, resource) == ["denied"]


def test_a_failing_tool_is_reported_failed(stack: Stack) -> None:
    # `sdk.read` is allowed by policy: approved at once; the tool then raises.
    run, ran, seen = secrets.token_hex(4), [], []  # type: str, list[str], list[str]
    resource = f"test://openai-agents/{run}/vacuum"
    signoff = SignoffApprovals(
        AsyncSignoff(stack.base_url, stack.key, timeout=30),
        action="sdk.read",
        resource=lambda tool, args: f"test://openai-agents/{run}/{tool}",
    )
    agent = make_agent(scripted("vacuum", {"table": "logs"}, seen), ran)
    asyncio.run(signoff.run(agent, "Vacuum logs"))
    assert ran == ["vacuum logs"]
    assert statuses(stack, resource) == ["failed"]
