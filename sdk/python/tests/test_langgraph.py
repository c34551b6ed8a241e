"""LangGraph: a graph with no model (a scripted node proposes the tool call) and a `ToolNode`
whose calls wait for Signoff."""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402

from conftest import Stack  # noqa: E402
from signoff import AsyncSignoff, Signoff  # noqa: E402
from signoff.langgraph import SignoffToolCalls  # noqa: E402

pool = ThreadPoolExecutor(max_workers=2)


def build(stack: Stack, run: str, name: str, args: dict[str, Any], ran: list[str], client: Any, **options: Any) -> Any:
    @tool
    def drop_table(table: str) -> str:
        """Drop a table."""
        ran.append(table)
        return f"dropped {table}"

    @tool
    def count_rows(table: str) -> str:
        """Count a table's rows."""
        ran.append(f"count {table}")
        raise ValueError(f"no such table {table}")

    def model(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        if isinstance(last, ToolMessage):
            return {"messages": [AIMessage(content=f"The tool said: {last.content}")]}
        return {"messages": [AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "call_1"}])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    signoff = SignoffToolCalls(client, resource=lambda call: f"test://langgraph/{run}/{call['name']}", **options)
    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tools", signoff.tool_node([drop_table, count_rows], handle_tool_errors=True))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile()


def test_tool_runs_only_after_approval(stack: Stack) -> None:
    run, ran = secrets.token_hex(4), []  # type: list[str]
    graph = build(stack, run, "drop_table", {"table": "users"}, ran, Signoff(stack.base_url, stack.key, timeout=30))
    result = pool.submit(graph.invoke, {"messages": [("user", "drop users")]})
    pending = stack.reviewer.pending(f"test://langgraph/{run}/drop_table")
    shown = stack.reviewer.get(pending["id"])
    assert shown["action"] == "langgraph.drop_table" and shown["payload"] == {"table": "users"}
    time.sleep(0.3)
    assert ran == [], "the tool ran before anyone approved"
    stack.reviewer.decide(pending["id"], "approve", "ok")
    final = result.result(timeout=30)
    assert final["messages"][-1].content == "The tool said: dropped users"
    assert ran == ["users"]
    assert stack.reviewer.get(pending["id"])["status"] == "executed"


def test_denial_comment_reaches_the_model_async(stack: Stack) -> None:
    run, ran = secrets.token_hex(4), []  # type: list[str]
    graph = build(stack, run, "drop_table", {"table": "payments"}, ran, AsyncSignoff(stack.base_url, stack.key, timeout=30))

    async def scenario() -> Any:
        async def review() -> None:
            pending = await asyncio.to_thread(stack.reviewer.pending, f"test://langgraph/{run}/drop_table")
            await asyncio.to_thread(stack.reviewer.decide, pending["id"], "deny", "payments is under legal hold")

        final, _ = await asyncio.gather(graph.ainvoke({"messages": [("user", "drop payments")]}), review())
        return final

    final = asyncio.run(scenario())
    assert ran == []
    tool_message = final["messages"][-2]
    assert isinstance(tool_message, ToolMessage) and tool_message.status == "error"
    assert "payments is under legal hold" in str(tool_message.content)
    assert "payments is under legal hold" in final["messages"][-1].content


def test_failed_tool_is_reported_and_ungated_tools_run(stack: Stack) -> None:
    # `sdk.read` is allowed by policy; the tool then fails, and the failure is reported.
    run, ran = secrets.token_hex(4), []  # type: list[str]
    client = Signoff(stack.base_url, stack.key, timeout=30)
    graph = build(stack, run, "count_rows", {"table": "ghosts"}, ran, client, action="sdk.read")
    final = graph.invoke({"messages": [("user", "count ghosts")]})
    assert ran == ["count ghosts"]
    assert "no such table ghosts" in str(final["messages"][-2].content)
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    mine = [r for r in listed.json()["items"] if r["resource"] == f"test://langgraph/{run}/count_rows"]
    assert [r["status"] for r in mine] == ["failed"]
    # A node gating only `drop_table` lets `count_rows` through with no request.
    run2, ran2 = secrets.token_hex(4), []  # type: list[str]
    graph = build(stack, run2, "count_rows", {"table": "t"}, ran2, client, tools=["drop_table"])
    graph.invoke({"messages": [("user", "count t")]})
    assert ran2 == ["count t"]
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    assert not [r for r in listed.json()["items"] if r["resource"].startswith(f"test://langgraph/{run2}/")]
