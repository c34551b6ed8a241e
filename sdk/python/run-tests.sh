#!/usr/bin/env bash
# The Python SDK's tests against a real `signoff-server --dev` (tests/conftest.py), on SQLite and,
# when one answers at TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres), on
# Postgres; SIGNOFF_REQUIRE_POSTGRES=1 makes a missing Postgres a failure. The server binary is
# SIGNOFF_SERVER_BIN, or target/debug/signoff-server. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
stamp=$venv/.installed
if [ ! -x "$venv/bin/python" ] || [ ! -f "$stamp" ] || [ requirements-test.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "sdk/python: installing the test environment in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-test.txt
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e ".[pydantic-ai,claude-agent-sdk,langgraph,openai-agents]" -c requirements-test.txt
    touch "$stamp"
fi
exec "$venv/bin/python" -m pytest "$@"
