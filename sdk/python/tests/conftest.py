"""A real `signoff-server --dev` for the tests, on SQLite and on Postgres.

The server binary is `SIGNOFF_SERVER_BIN`, or `../../target/debug/signoff-server` from here.
Postgres: `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each
run creates a database of its own there and drops it after. When nothing answers there, the
Postgres tests are skipped, unless `SIGNOFF_REQUIRE_POSTGRES=1` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

HERE = Path(__file__).resolve().parent.parent
DEFAULT_BIN = HERE / ".." / ".." / "target" / "debug" / "signoff-server"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
AGENT = "sdk-bot"
OWNER = "owner@example.com"

POLICIES = """
[[policy]]
name = "sdk reads"
[policy.match]
actions = ["sdk.read"]
[policy.effect]
type = "allow"

[[policy]]
name = "sdk drops"
[policy.match]
actions = ["sdk.drop"]
[policy.effect]
type = "deny"
reason = "agents never drop tables"
"""


def server_bin() -> Path:
    path = Path(os.environ.get("SIGNOFF_SERVER_BIN") or DEFAULT_BIN).resolve()
    if not path.is_file():
        pytest.fail(
            f"no signoff-server binary at {path}: build it (cargo build -p signoff-server) or set SIGNOFF_SERVER_BIN",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_required() -> bool:
    return os.environ.get("SIGNOFF_REQUIRE_POSTGRES") == "1"


class PostgresDatabase:
    """A database of this run's own on the test Postgres server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin_url = admin_url
        self.name = f"signoff_sdk_{secrets.token_hex(6)}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base, _, _ = admin_url.rpartition("/")
        query = ""
        if "?" in admin_url.rsplit("/", 1)[1]:
            query = "?" + admin_url.rsplit("?", 1)[1]
        self.url = f"{base}/{self.name}{query}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


_postgres_checked: Optional[tuple[str, str]] = None  # ("ok" | "skip" | "fail", url or message)


def postgres_admin_url() -> str:
    """The test Postgres server's URL, once it accepts connections; skips (or fails) when none
    answers. Checked once per run."""
    global _postgres_checked
    if _postgres_checked is None:
        _postgres_checked = _check_postgres()
    outcome, text = _postgres_checked
    if outcome == "fail":
        pytest.fail(text, pytrace=False)
    if outcome == "skip":
        pytest.skip(text)
    return text


def _check_postgres() -> tuple[str, str]:
    import psycopg

    url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    deadline = time.monotonic() + (60 if postgres_required() else 5)
    error: Optional[Exception] = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=5):
                return ("ok", url)
        except psycopg.OperationalError as err:
            error = err
            if "Connection refused" in str(err) and not postgres_required():
                break
            time.sleep(1)
    message = f"no Postgres at {url} ({error})"
    if postgres_required():
        return ("fail", f"{message} and SIGNOFF_REQUIRE_POSTGRES=1")
    return ("skip", f"SKIPPED ({message}); set TEST_POSTGRES_URL, or SIGNOFF_REQUIRE_POSTGRES=1 to make this a failure")


class Server:
    """One `signoff-server --dev` on a free port, its data in a temporary directory."""

    def __init__(self, store: str, database_url: Optional[str], workdir: Path) -> None:
        self.store = store
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_") and k != "DATABASE_URL"}
        env.update(
            {
                "SIGNOFF_LISTEN": f"127.0.0.1:{self.port}",
                "SIGNOFF_DATA_DIR": str(workdir / "data"),
                "SIGNOFF_RATE_LIMIT_PER_MINUTE": "100000",
                "SIGNOFF_SWEEP_INTERVAL": "200ms",
                "RUST_LOG": "warn",
            }
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        self.env = env
        self.process: Optional[subprocess.Popen[bytes]] = None
        policies = workdir / "policies.toml"
        policies.write_text(POLICIES)
        self.cli("migrate")
        self.cli("policies", "import", str(policies))
        self.agent_key = self.create_agent(AGENT, OWNER)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(server_bin()), "--dev", *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"signoff-server {' '.join(args)} failed ({done.returncode}): {done.stderr}{done.stdout}")
        return done.stdout

    def create_agent(self, name: str, owner: str) -> str:
        return self.cli("agents", "create", "--name", name, "--owner", owner).strip().splitlines()[-1].strip()

    def start(self) -> None:
        assert self.process is None
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(server_bin()), "--dev"], env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"signoff-server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"signoff-server did not answer within 60s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Ends the server at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class Reviewer:
    """A person in the console: Riley, through the development sign-in, deciding over the reviewer API."""

    def __init__(self, server: Server, user: str = "riley") -> None:
        self.server = server
        self.user = user
        self.http = httpx.Client(base_url=server.base_url, follow_redirects=True, timeout=30)
        self.csrf = ""
        self.sign_in()

    def sign_in(self) -> None:
        page = self.http.get("/auth/dev")
        page.raise_for_status()
        form_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert form_csrf, "the development sign-in page has a CSRF field"
        landed = self.http.post(
            "/auth/dev",
            data={"csrf": form_csrf.group(1), "user": self.user, "next": "/"},
            headers={"Origin": self.server.base_url},
        )
        landed.raise_for_status()
        token = re.search(r'name="csrf-token" content="([^"]+)"', landed.text)
        assert token, "the console page carries its CSRF token"
        self.csrf = token.group(1)

    def get(self, request_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/requests/{request_id}")
        response.raise_for_status()
        return dict(response.json())

    def pending(self, resource: str, timeout: float = 20) -> dict[str, Any]:
        """The pending request on `resource`, once it shows up in the queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = self.http.get("/api/v1/requests", params={"status": "pending", "agent": AGENT, "limit": 200})
                if response.status_code == 200:
                    for item in response.json()["items"]:
                        if item["resource"] == resource:
                            return dict(item)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no pending request on {resource} within {timeout}s")

    def decide(self, request_id: str, verdict: str, comment: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"verdict": verdict}
        if comment:
            body["comment"] = comment
        response = self.http.post(
            f"/api/v1/requests/{request_id}/decisions",
            json=body,
            headers={"X-CSRF-Token": self.csrf, "Origin": self.server.base_url},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def close(self) -> None:
        self.http.close()


class Stack:
    """A running server, its agent key and a reviewer."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.base_url = server.base_url
        self.key = server.agent_key
        self.reviewer = Reviewer(server)

    def unique(self, prefix: str = "res") -> str:
        return f"test://{prefix}/{secrets.token_hex(6)}"


def _make_stack(store: str, tmp: Path, cleanups: list[Callable[[], None]]) -> Stack:
    database_url: Optional[str] = None
    if store == "postgres":
        database = PostgresDatabase(postgres_admin_url())
        cleanups.append(database.drop)
        database_url = database.url
    server = Server(store, database_url, tmp)
    cleanups.append(server.stop)
    server.start()
    stack = Stack(server)
    cleanups.append(stack.reviewer.close)
    return stack


def _cleanup(cleanups: list[Callable[[], None]]) -> None:
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception as err:  # noqa: BLE001 - clean up the rest anyway
            print(f"cleanup failed: {err}")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def stack(store: str) -> Iterator[Stack]:
    """One server per store, shared by the tests that do not restart it."""
    tmp = Path(tempfile.mkdtemp(prefix=f"signoff-sdk-{store}-"))
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    try:
        yield _make_stack(store, tmp, cleanups)
    finally:
        _cleanup(cleanups)


@pytest.fixture
def own_stack(store: str) -> Iterator[Stack]:
    """A server of the test's own, for tests that kill and restart it."""
    tmp = Path(tempfile.mkdtemp(prefix=f"signoff-sdk-{store}-own-"))
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    try:
        yield _make_stack(store, tmp, cleanups)
    finally:
        _cleanup(cleanups)
