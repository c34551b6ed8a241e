"""The client against a real server: what an agent sees, and what the server then shows."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Stack
from signoff import (
    Approval,
    AsyncSignoff,
    Cancelled,
    ConfigurationError,
    Conflict,
    Denied,
    Expired,
    InvalidRequest,
    NotFound,
    Signoff,
    TimedOut,
    Unauthorized,
)

pool = ThreadPoolExecutor(max_workers=4)


def client(stack: Stack, **options: object) -> Signoff:
    return Signoff(stack.base_url, stack.key, **options)  # type: ignore[arg-type]


def test_approval_returns_who_approved_under_which_policy(stack: Stack) -> None:
    resource = stack.unique("deploy")
    signoff = client(stack, timeout=30)
    asked = pool.submit(
        signoff.request_approval,
        "sdk.deploy",
        resource,
        reason="Release 1.5.0",
        title="Deploy the test service",
        payload={"image": "svc:1.5.0", "replicas": 3},
        diff={"before": {"image": "svc:1.4.2"}, "after": {"image": "svc:1.5.0"}},
        labels={"env": "test"},
        on_behalf_of="reese@example.com",
        context={"ticket": "OPS-1"},
    )
    pending = stack.reviewer.pending(resource)
    time.sleep(0.3)
    assert not asked.done(), "request_approval returned before anyone decided"
    shown = stack.reviewer.get(pending["id"])
    assert shown["payload"] == {"image": "svc:1.5.0", "replicas": 3}
    assert shown["labels"] == {"env": "test"}
    assert shown["title"] == "Deploy the test service"
    assert shown["on_behalf_of"] == "reese@example.com"
    assert "svc:1.5.0" in shown["diff"]

    stack.reviewer.decide(pending["id"], "approve", "ship it")
    approval = asked.result(timeout=20)
    assert isinstance(approval, Approval)
    assert approval.id == pending["id"]
    assert [a.email for a in approval.approvers] == ["riley@example.com"]
    assert approval.approvers[0].display_name == "Riley Reviewer"
    assert approval.comments == ("ship it",)
    assert approval.policy.name == "default"
    assert not approval.by_policy
    # The receipt, when the server issues one, is the signed compact JWS it carries.
    assert approval.receipt == approval.request.raw.get("receipt")
    if approval.receipt is not None:
        assert approval.receipt.count(".") == 2
    assert stack.reviewer.get(approval.id)["status"] == "approved"


def test_denial_carries_the_reviewers_comment(stack: Stack) -> None:
    resource = stack.unique("deny")
    signoff = client(stack, timeout=30)
    asked = pool.submit(signoff.request_approval, "sdk.deploy", resource, reason="Friday deploy")
    pending = stack.reviewer.pending(resource)
    stack.reviewer.decide(pending["id"], "deny", "not during the change freeze")
    with pytest.raises(Denied) as denied:
        asked.result(timeout=20)
    assert denied.value.comments == ["not during the change freeze"]
    assert denied.value.comment == "not during the change freeze"
    assert "not during the change freeze" in str(denied.value)
    assert "Riley Reviewer" in str(denied.value)
    assert denied.value.id == pending["id"]
    assert not denied.value.by_policy
    assert stack.reviewer.get(pending["id"])["status"] == "denied"


def test_policies_decide_at_once(stack: Stack) -> None:
    signoff = client(stack, timeout=10)
    started = time.monotonic()
    approval = signoff.request_approval("sdk.read", stack.unique("read"), reason="read-only")
    assert approval.by_policy and approval.approvers == ()
    assert approval.policy.name == "sdk reads" and approval.policy.effect == "allow"
    with pytest.raises(Denied) as denied:
        signoff.request_approval("sdk.drop", stack.unique("drop"), reason="cleanup")
    assert denied.value.by_policy
    assert denied.value.comments == ["agents never drop tables"]
    assert time.monotonic() - started < 5


def test_expiry(stack: Stack) -> None:
    signoff = client(stack, timeout=30)
    started = time.monotonic()
    with pytest.raises(Expired) as expired:
        signoff.request_approval("sdk.deploy", stack.unique("expire"), reason="nobody looks", ttl=1)
    assert time.monotonic() - started < 10
    assert "expired" in str(expired.value)
    assert stack.reviewer.get(expired.value.id)["status"] == "expired"


def test_timeout_cancels_the_request(stack: Stack) -> None:
    signoff = client(stack)
    started = time.monotonic()
    with pytest.raises(TimedOut) as timed_out:
        signoff.request_approval("sdk.deploy", stack.unique("timeout"), reason="in a hurry", timeout=1.5)
    took = time.monotonic() - started
    assert 1.4 < took < 10, took
    assert timed_out.value.cancelled
    assert "cancelled" in str(timed_out.value)
    assert stack.reviewer.get(timed_out.value.id)["status"] == "cancelled"


def test_cancelled_by_the_agent_elsewhere(stack: Stack) -> None:
    resource = stack.unique("cancel")
    signoff = client(stack, timeout=30)
    asked = pool.submit(signoff.request_approval, "sdk.deploy", resource, reason="changed my mind")
    pending = stack.reviewer.pending(resource)
    assert signoff.cancel(pending["id"]).status == "cancelled"
    with pytest.raises(Cancelled):
        asked.result(timeout=20)
    # Cancelling again answers the request as it stands.
    assert signoff.cancel(pending["id"]).status == "cancelled"


def test_same_idempotency_key_same_request(stack: Stack) -> None:
    signoff = client(stack, timeout=30)
    resource = stack.unique("idem")
    fields = dict(reason="retried job", payload={"n": 1}, idempotency_key=f"job-{resource}")
    first = signoff.submit("sdk.deploy", resource, **fields)  # type: ignore[arg-type]
    again = signoff.submit("sdk.deploy", resource, **fields)  # type: ignore[arg-type]
    assert first == again
    # request_approval with that key resumes the same request.
    asked = pool.submit(signoff.request_approval, "sdk.deploy", resource, **fields)
    time.sleep(0.3)
    stack.reviewer.decide(first, "approve", "ok")
    assert asked.result(timeout=20).id == first
    # The same key with another body is refused, and says so.
    with pytest.raises(Conflict) as conflict:
        signoff.submit("sdk.deploy", resource, reason="retried job", payload={"n": 2}, idempotency_key=f"job-{resource}")
    assert conflict.value.status == 409
    assert "409" in str(conflict.value) and "POST /api/v1/requests" in str(conflict.value)


def test_low_level_calls_for_frameworks_that_pause(stack: Stack) -> None:
    signoff = client(stack)
    request_id = signoff.submit("sdk.deploy", stack.unique("pause"), reason="step by step")
    assert signoff.status(request_id).status == "pending"
    started = time.monotonic()
    assert signoff.wait(request_id, timeout=1).pending
    assert time.monotonic() - started >= 0.9
    stack.reviewer.decide(request_id, "approve", "go")
    decided = signoff.wait(request_id, timeout=10)
    assert decided.status == "approved"
    assert decided.approval().approvers[0].email == "riley@example.com"
    assert signoff.start(request_id).started_at
    reported = signoff.report(request_id, "executed", {"rows": 12})
    assert reported.status == "executed"
    assert stack.reviewer.get(request_id)["status"] == "executed"
    # A retried report of the same outcome answers the request as it stands.
    assert signoff.report(request_id, "executed", {"rows": 12}).status == "executed"


def test_errors_say_what_went_wrong(stack: Stack) -> None:
    with pytest.raises(Unauthorized) as unauthorized:
        Signoff(stack.base_url, "so_agent_nope").submit("sdk.deploy", "x://y", reason="r")
    assert unauthorized.value.status == 401 and "SIGNOFF_AGENT_KEY" in str(unauthorized.value)
    with pytest.raises(InvalidRequest) as invalid:
        client(stack).submit("Not An Action!", "x://y", reason="r")
    assert invalid.value.status == 422 and "action" in invalid.value.message
    with pytest.raises(NotFound) as missing:
        client(stack).status("01a24655-944a-731c-b06c-b5d58638ef42")
    assert missing.value.status == 404 and missing.value.code
    with pytest.raises(ConfigurationError, match="SIGNOFF_AGENT_KEY"):
        Signoff(stack.base_url, "")
    with pytest.raises(ConfigurationError, match="in the clear"):
        Signoff("http://signoff.example.com", "so_agent_x")


def test_environment_configures_the_client(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_SERVER", stack.base_url + "/")
    monkeypatch.setenv("SIGNOFF_AGENT_KEY", stack.key)
    approval = Signoff().request_approval("sdk.read", stack.unique("env"), reason="from the environment")
    assert approval.policy.name == "sdk reads"


def test_async_client(stack: Stack) -> None:
    async def scenario() -> None:
        async with AsyncSignoff(stack.base_url, stack.key, timeout=30) as signoff:
            approved_on, denied_on = stack.unique("async-ok"), stack.unique("async-no")

            async def review(resource: str, verdict: str, comment: str) -> None:
                pending = await asyncio.to_thread(stack.reviewer.pending, resource)
                await asyncio.to_thread(stack.reviewer.decide, pending["id"], verdict, comment)

            approval, _ = await asyncio.gather(
                signoff.request_approval("sdk.deploy", approved_on, reason="async"),
                review(approved_on, "approve", "fine"),
            )
            assert approval.approvers[0].email == "riley@example.com"
            with pytest.raises(Denied) as denied:
                await asyncio.gather(
                    signoff.request_approval("sdk.deploy", denied_on, reason="async"),
                    review(denied_on, "deny", "use the staging cluster"),
                )
            assert denied.value.comments == ["use the staging cluster"]
            with pytest.raises(TimedOut):
                await signoff.request_approval("sdk.deploy", stack.unique("async-t"), reason="async", timeout=1)
            request_id = await signoff.submit("sdk.deploy", stack.unique("async-low"), reason="async")
            assert (await signoff.wait(request_id, timeout=0.5)).pending
            assert (await signoff.cancel(request_id)).status == "cancelled"

    asyncio.run(scenario())


def test_async_client_across_event_loops(stack: Stack) -> None:
    # `asyncio.run` twice (or a framework's run_sync) with one client.
    signoff = AsyncSignoff(stack.base_url, stack.key, timeout=10)
    first = asyncio.run(signoff.request_approval("sdk.read", stack.unique("loop"), reason="first loop"))
    second = asyncio.run(signoff.status(first.id))
    assert second.id == first.id and second.approved
