"""Drives Signoff's MCP tools with the official MCP Python client (PyPI `mcp`).

Usage: client.py PLAN_JSON

PLAN_JSON is an object:
  transport  "http" (url, key) or "stdio" (command, args, env)
  mode       (optional) the client's `mode`: "auto" (the default: probe `server/discover`,
             fall back to `initialize`), "legacy" (the 2025-11-25 handshake only) or a
             stateless revision such as "2026-07-28" (no handshake, `_meta` on each request)
  steps      a list of {"list_tools": true} or {"tool": NAME, "args": {...}}; in args, the
             string "$id" stands for the id the previous tool call answered.
  events     (optional) a file the client appends one JSON line to as things happen, so the
             test can act at the right moment: {"step": i, "event": "started"} before a
             call, {"step": i, "event": "progress", ...} for each progress notification,
             {"step": i, "event": "done"} after it.

Prints one JSON object on standard output: {"ok": true, "protocol_version": ..., "steps": [...]}
with the revision the client ended up speaking and, for each
step, the tool names (and each tool's annotations, as on the wire) or the call's is_error, structured content, texts and progress
notifications; or {"ok": false, "error": "..."} when the client could not connect or a
call failed at the protocol level. Over HTTP, "refusals" lists every non-2xx answer the
server gave ({"status": ..., "body": ...}): the MCP library reports them only as "Server
returned an error response". The Rust test (tests/tests/mcp.rs) asserts on it. Over HTTP,
"methods" lists the JSON-RPC method of every POST in order and "session_ids" every
`Mcp-Session-Id` the server answered with, so a test can see which revision went over the wire.
"""

import asyncio
import json
import sys
import traceback

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def substitute(value, last_id):
    if value == "$id":
        return last_id
    if isinstance(value, dict):
        return {key: substitute(item, last_id) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, last_id) for item in value]
    return value


def event_log(plan):
    path = plan.get("events")

    def note(**event):
        if path:
            with open(path, "a", encoding="utf-8") as events:
                events.write(json.dumps(event) + "\n")

    return note


async def run(plan, wire):
    note = event_log(plan)
    refusals = wire["refusals"]
    if plan["transport"] == "http":

        async def keep_method(request):
            try:
                body = json.loads(request.content or b"null")
            except ValueError:
                return
            for message in body if isinstance(body, list) else [body]:
                if isinstance(message, dict) and "method" in message:
                    wire["methods"].append(message["method"])

        async def keep_refusals(response):
            session = response.headers.get("mcp-session-id")
            if session:
                wire["session_ids"].append(session)
            if response.status_code >= 400:
                await response.aread()
                refusals.append({"status": response.status_code, "body": response.text})

        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {plan['key']}"},
            timeout=httpx2.Timeout(30.0, read=120.0),
            event_hooks={"request": [keep_method], "response": [keep_refusals]},
        )
        server = streamable_http_client(plan["url"], http_client=http)
    else:
        server = StdioServerParameters(command=plan["command"], args=plan.get("args", []), env=plan.get("env"))

    steps = []
    last_id = None
    async with Client(server, read_timeout_seconds=120, mode=plan.get("mode", "auto")) as client:
        wire["protocol_version"] = client.protocol_version
        for index, step in enumerate(plan["steps"]):
            note(step=index, event="started")
            if step.get("list_tools"):
                listed = await client.list_tools()
                steps.append(
                    {
                        "tools": sorted(tool.name for tool in listed.tools),
                        "annotations": {
                            tool.name: tool.annotations.model_dump(by_alias=True, exclude_none=True)
                            for tool in listed.tools
                            if tool.annotations is not None
                        },
                    }
                )
                note(step=index, event="done")
                continue
            progress = []

            async def on_progress(done, total, message, progress=progress, index=index):
                progress.append({"progress": done, "total": total, "message": message})
                note(step=index, event="progress", progress=done, total=total, message=message)

            result = await client.call_tool(
                step["tool"],
                substitute(step.get("args", {}), last_id),
                progress_callback=on_progress,
            )
            structured = result.structured_content
            if isinstance(structured, dict) and isinstance(structured.get("id"), str):
                last_id = structured["id"]
            steps.append(
                {
                    "tool": step["tool"],
                    "is_error": bool(result.is_error),
                    "structured": structured,
                    "texts": [block.text for block in result.content if getattr(block, "type", None) == "text"],
                    "progress": progress,
                }
            )
            note(step=index, event="done")
    return steps


def main():
    plan = json.loads(sys.argv[1])
    wire = {"protocol_version": None, "refusals": [], "methods": [], "session_ids": []}
    try:
        steps = asyncio.run(run(plan, wire))
        print(json.dumps({"ok": True, "steps": steps, **wire}))
    except BaseException as error:  # noqa: BLE001 - the test reads what failed
        traceback.print_exc()
        print(json.dumps({"ok": False, "error": "; ".join(describe(error)), **wire}))


def describe(error):
    """The causes an exception group (anyio task groups) hides inside it."""
    inner = getattr(error, "exceptions", None)
    if inner:
        return [text for cause in inner for text in describe(cause)]
    return [f"{type(error).__name__}: {error}"]


if __name__ == "__main__":
    main()
