"""`@require_approval` on sync and async functions: nothing runs before the approval."""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import Stack
from signoff import AsyncSignoff, Denied, Signoff, require_approval

pool = ThreadPoolExecutor(max_workers=4)


def test_sync_function_runs_once_approved_and_its_outcome_is_reported(stack: Stack) -> None:
    run = secrets.token_hex(4)
    calls: list[tuple[str, str]] = []
    signoff = Signoff(stack.base_url, stack.key, timeout=30)

    @require_approval(
        action="sdk.deploy",
        resource=lambda service, **_: f"test://deploy/{service}-{run}",
        labels={"env": "test"},
        client=signoff,
    )
    def deploy(service: str, version: str = "1.0", *, dry_run: bool = False) -> str:
        """Deploy a service to the test cluster."""
        calls.append((service, version))
        return f"deployed {service} {version}"

    resource = f"test://deploy/api-{run}"
    called = pool.submit(deploy, "api", version="2.0")
    pending = stack.reviewer.pending(resource)
    shown = stack.reviewer.get(pending["id"])
    assert shown["payload"] == {"service": "api", "version": "2.0", "dry_run": False}
    assert shown["reason"] == "Deploy a service to the test cluster."
    time.sleep(0.3)
    assert calls == [], "the function ran before anyone approved"
    stack.reviewer.decide(pending["id"], "approve", "go ahead")
    assert called.result(timeout=20) == "deployed api 2.0"
    assert calls == [("api", "2.0")]
    done = stack.reviewer.get(pending["id"])
    assert done["status"] == "executed"
    assert done["started_at"]

    # Denied: the function never runs, the caller gets the comment.
    called = pool.submit(deploy, "web")
    pending = stack.reviewer.pending(f"test://deploy/web-{run}")
    stack.reviewer.decide(pending["id"], "deny", "web is frozen this week")
    with pytest.raises(Denied, match="web is frozen this week"):
        called.result(timeout=20)
    assert calls == [("api", "2.0")]
    assert stack.reviewer.get(pending["id"])["status"] == "denied"


def test_a_failing_function_is_reported_failed(stack: Stack) -> None:
    signoff = Signoff(stack.base_url, stack.key, timeout=30)
    resource = stack.unique("fail")

    @signoff.require_approval("sdk.deploy", resource)
    def migrate(steps: int) -> None:
        raise RuntimeError(f"disk full after {steps} steps")

    called = pool.submit(migrate, 3)
    pending = stack.reviewer.pending(resource)
    stack.reviewer.decide(pending["id"], "approve", "ok")
    with pytest.raises(RuntimeError, match="disk full after 3 steps"):
        called.result(timeout=20)
    done = stack.reviewer.get(pending["id"])
    assert done["status"] == "failed"
    assert "RuntimeError: disk full after 3 steps" in str(done["result"])


def test_async_function(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The client comes from the environment, made at the first call.
    monkeypatch.setenv("SIGNOFF_SERVER", stack.base_url)
    monkeypatch.setenv("SIGNOFF_AGENT_KEY", stack.key)
    run = secrets.token_hex(4)
    calls: list[dict[str, Any]] = []

    @require_approval(action="sdk.export", resource=lambda table, *_, **__: f"test://export/{table}-{run}", timeout=30)
    async def export(table: str, rows: list[int]) -> int:
        calls.append({"table": table, "rows": rows})
        await asyncio.sleep(0)
        return len(rows)

    async def review(resource: str, verdict: str, comment: str) -> None:
        pending = await asyncio.to_thread(stack.reviewer.pending, resource)
        await asyncio.sleep(0.3)
        table = resource.rsplit("/", 1)[1].rsplit("-", 1)[0]
        assert all(call["table"] != table for call in calls), "the function ran before anyone decided"
        await asyncio.to_thread(stack.reviewer.decide, pending["id"], verdict, comment)

    async def scenario() -> None:
        counted, _ = await asyncio.gather(
            export("customers", [1, 2, 3]), review(f"test://export/customers-{run}", "approve", "fine")
        )
        assert counted == 3
        with pytest.raises(Denied) as denied:
            await asyncio.gather(export("payments", [4]), review(f"test://export/payments-{run}", "deny", "PCI data"))
        assert denied.value.comments == ["PCI data"]

    asyncio.run(scenario())
    assert calls == [{"table": "customers", "rows": [1, 2, 3]}]
    done = Signoff(stack.base_url, stack.key)
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200}).json()["items"]
    by_resource = {r["resource"]: r for r in listed}
    assert by_resource[f"test://export/customers-{run}"]["status"] == "executed"
    assert by_resource[f"test://export/payments-{run}"]["status"] == "denied"
    assert done.status(by_resource[f"test://export/customers-{run}"]["id"]).payload == {
        "table": "customers",
        "rows": [1, 2, 3],
    }


def test_async_client_given_to_the_decorator(stack: Stack) -> None:
    resource = stack.unique("async-client")
    signoff = AsyncSignoff(stack.base_url, stack.key, timeout=30)

    @signoff.require_approval("sdk.read", resource)
    async def read() -> str:
        return "read"

    # `sdk.read` is allowed by policy: it runs at once, and is reported.
    assert asyncio.run(read()) == "read"
    listed = stack.reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200}).json()["items"]
    assert [r["status"] for r in listed if r["resource"] == resource] == ["executed"]
