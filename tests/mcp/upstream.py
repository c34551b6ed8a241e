"""An upstream MCP server for `signoff mcp-gateway`'s tests, written with the official MCP
Python SDK (PyPI `mcp`; its FastMCP is `MCPServer` since mcp 2). Serves on stdio, or on
streamable HTTP at http://127.0.0.1:PORT/mcp when started as `upstream.py --http PORT`.

Two tools:
  read_note    read-only (readOnlyHint=true): answers the text of a note, changes nothing
  delete_note  destructive (destructiveHint=true): appends "deleted <name>" to the file named
               by UPSTREAM_LOG, so a test sees whether (and how often) it ran
"""

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes-server", version="1.0.0", instructions="Notes: read and delete them.")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def read_note(name: str) -> str:
    """Read a note."""
    return f"note {name}: buy milk"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_note(name: str) -> str:
    """Delete a note for good."""
    with open(os.environ["UPSTREAM_LOG"], "a", encoding="utf-8") as log:
        log.write(f"deleted {name}\n")
    return f"deleted {name}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
