"""The wait survives the server going away: a crash, then a restart on the same database."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from conftest import Reviewer, Stack
from signoff import Signoff

pool = ThreadPoolExecutor(max_workers=2)


def test_server_restart_during_the_wait(own_stack: Stack) -> None:
    server = own_stack.server
    signoff = Signoff(own_stack.base_url, own_stack.key, timeout=60)

    # 1. Killed while the agent waits: the agent reconnects and still gets the decision.
    resource = own_stack.unique("restart")
    asked = pool.submit(signoff.request_approval, "sdk.deploy", resource, reason="through a crash")
    pending = own_stack.reviewer.pending(resource)
    time.sleep(0.5)
    server.kill()
    time.sleep(1.5)
    assert not asked.done(), "the wait gave up when the server went away"
    server.start()
    reviewer = Reviewer(server)
    reviewer.decide(pending["id"], "approve", "after the restart")
    approval = asked.result(timeout=30)
    assert approval.id == pending["id"]
    assert approval.comments == ("after the restart",)

    # 2. Down when the agent submits: the submission is retried (same Idempotency-Key) once it is back.
    server.kill()
    resource = own_stack.unique("down")
    asked = pool.submit(signoff.request_approval, "sdk.deploy", resource, reason="while it was down")
    time.sleep(1.5)
    assert not asked.done()
    server.start()
    reviewer = Reviewer(server)
    pending = reviewer.pending(resource)
    reviewer.decide(pending["id"], "deny", "not now")
    try:
        asked.result(timeout=30)
        raise AssertionError("expected a denial")
    except Exception as err:  # noqa: BLE001
        assert type(err).__name__ == "Denied" and "not now" in str(err), err
    listed = reviewer.http.get("/api/v1/requests", params={"status": "all", "agent": "sdk-bot", "limit": 200}).json()["items"]
    assert [r["id"] for r in listed if r["resource"] == resource] == [pending["id"]], "asked once"
    reviewer.close()
