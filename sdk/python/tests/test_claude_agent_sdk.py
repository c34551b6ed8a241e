"""Claude Agent SDK: `can_use_tool` and the outcome hooks, called with the SDK's own types."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import pytest

pytest.importorskip("claude_agent_sdk")

from claude_agent_sdk import (  # noqa: E402
    ClaudeAgentOptions,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ToolPermissionContext,
)

from conftest import Stack  # noqa: E402
from signoff import AsyncSignoff  # noqa: E402
from signoff.claude_agent_sdk import SignoffPermissions, request_for  # noqa: E402


def post_tool_use(event: str, tool_use_id: str, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "hook_event_name": event,
        "session_id": "s-1",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/work",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": tool_use_id,
        **extra,
    }


def test_approved_tool_runs_and_its_outcome_is_reported(stack: Stack) -> None:
    command = f"rm -rf /tmp/build-{secrets.token_hex(4)}"
    permissions = SignoffPermissions(AsyncSignoff(stack.base_url, stack.key, timeout=30))
    options = permissions.options(ClaudeAgentOptions(allowed_tools=["Read"]))
    assert options.can_use_tool is not None and options.hooks is not None
    ran: list[str] = []

    async def scenario() -> None:
        async def review() -> None:
            pending = await asyncio.to_thread(stack.reviewer.pending, command)
            shown = await asyncio.to_thread(stack.reviewer.get, pending["id"])
            assert shown["action"] == "claude_code.bash"
            assert shown["payload"] == {"command": command, "description": "Clean the build"}
            assert shown["reason"] == "Clean the build"
            await asyncio.sleep(0.3)
            assert ran == [], "the tool ran before anyone approved"
            await asyncio.to_thread(stack.reviewer.decide, pending["id"], "approve", "fine")

        context = ToolPermissionContext(tool_use_id="toolu_01", suggestions=[])
        assert options.can_use_tool is not None
        answer, _ = await asyncio.gather(
            options.can_use_tool("Bash", {"command": command, "description": "Clean the build"}, context), review()
        )
        assert isinstance(answer, PermissionResultAllow)
        ran.append(command)  # what the CLI does on allow
        assert options.hooks is not None
        for matcher in options.hooks["PostToolUse"]:
            for hook in matcher.hooks:
                assert await hook(post_tool_use("PostToolUse", "toolu_01", command, tool_response="ok"), "toolu_01", {"signal": None}) == {}  # type: ignore[arg-type]

    asyncio.run(scenario())
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    mine = [r for r in listed.json()["items"] if r["resource"] == command]
    assert [r["status"] for r in mine] == ["executed"]


def test_denial_tells_the_model_the_comment(stack: Stack) -> None:
    command = f"git push --force origin main # {secrets.token_hex(4)}"
    permissions = SignoffPermissions(AsyncSignoff(stack.base_url, stack.key, timeout=30))

    async def scenario() -> Any:
        async def review() -> None:
            pending = await asyncio.to_thread(stack.reviewer.pending, command)
            await asyncio.to_thread(stack.reviewer.decide, pending["id"], "deny", "open a pull request instead")

        context = ToolPermissionContext(tool_use_id="toolu_02", suggestions=[])
        answer, _ = await asyncio.gather(permissions.can_use_tool("Bash", {"command": command}, context), review())
        return answer

    answer = asyncio.run(scenario())
    assert isinstance(answer, PermissionResultDeny)
    assert "open a pull request instead" in answer.message


def test_a_failed_tool_is_reported_failed(stack: Stack) -> None:
    # `sdk.read` is allowed by policy: no reviewer needed.
    marker = f"test://claude/{secrets.token_hex(4)}"
    permissions = SignoffPermissions(
        AsyncSignoff(stack.base_url, stack.key, timeout=30),
        describe=lambda tool, tool_input: {"action": "sdk.read", "resource": marker},
    )
    existing = HookMatcher(matcher="Bash", hooks=[])
    options = permissions.options(ClaudeAgentOptions(hooks={"PostToolUseFailure": [existing]}))
    assert options.hooks is not None and options.hooks["PostToolUseFailure"][0] is existing

    async def scenario() -> None:
        context = ToolPermissionContext(tool_use_id="toolu_03", suggestions=[])
        assert options.can_use_tool is not None
        assert isinstance(await options.can_use_tool("Bash", {"command": "make"}, context), PermissionResultAllow)
        failure = post_tool_use("PostToolUseFailure", "toolu_03", "make", error="make: *** [all] Error 2")
        assert options.hooks is not None
        for matcher in options.hooks["PostToolUseFailure"]:
            for hook in matcher.hooks:
                await hook(failure, "toolu_03", {"signal": None})  # type: ignore[arg-type]

    asyncio.run(scenario())
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200})
    mine = [r for r in listed.json()["items"] if r["resource"] == marker]
    assert [r["status"] for r in mine] == ["failed"]
    detail = stack.reviewer.get(mine[0]["id"])["result"]
    assert "Error 2" in str(detail)


def test_requests_match_the_claude_code_hook() -> None:
    assert request_for("Edit", {"file_path": "/src/app.py"})["action"] == "claude_code.write"
    assert request_for("Edit", {"file_path": "/src/app.py"})["resource"] == "/src/app.py"
    assert request_for("mcp__github__merge_pull_request", {})["action"] == "claude_code.mcp__github__merge_pull_request"
    long = "echo " + "x" * 600
    resource = request_for("Bash", {"command": long})["resource"]
    assert len(resource) == 512
    assert resource.endswith("… sha256:" + hashlib.sha256(long.encode()).hexdigest())
    assert resource.startswith("echo xxx")
