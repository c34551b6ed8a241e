# Signoff: `just run` starts the dev server, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build and start the development server on http://127.0.0.1:3000 (embedded SQLite, demo data).
run:
    cargo run -p signoff-server -- --dev

# Install what the tests need, then run every test (Postgres too when one answers), then the SDKs'.
test: test-deps
    cargo test --workspace --all-targets
    just sdk-ts-test
    just sdk-python-test

# The TypeScript SDK (sdk/typescript): npm ci from its lock file when needed, build, then Node's test
# runner against a real dev server (the debug build in CARGO_TARGET_DIR or target, or SIGNOFF_SERVER_BIN) on SQLite,
# and on Postgres when TEST_POSTGRES_URL is set (SIGNOFF_REQUIRE_POSTGRES=1 makes its absence a failure).
sdk-ts-test:
    SIGNOFF_SERVER_BIN="${SIGNOFF_SERVER_BIN:-$(realpath "${CARGO_TARGET_DIR:-target}")/debug/signoff-server}" sdk/typescript/run-tests.sh

# The Python SDK (sdk/python): its venv (pinned, sdk/python/.venv) when needed, then pytest against a
# real dev server (the debug build in CARGO_TARGET_DIR or target, or SIGNOFF_SERVER_BIN) on SQLite, and on Postgres
# when one answers at TEST_POSTGRES_URL (SIGNOFF_REQUIRE_POSTGRES=1 makes its absence a failure).
sdk-python-test *ARGS:
    SIGNOFF_SERVER_BIN="${SIGNOFF_SERVER_BIN:-$(realpath "${CARGO_TARGET_DIR:-target}")/debug/signoff-server}" sdk/python/run-tests.sh {{ARGS}}

# Formatting and lints, as CI wants them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Signoff beside the reference baseline (../shared/bench/baseline, or SIGNOFF_BASELINE_DIR) in one
# run, release builds, the same load generator: the ratios land in target/bench/ratios.md. Then the
# console page times and the terminal client's first frame.
bench:
    cargo build --release -p signoff-server -p signoff-tui -p signoff-tests --bins
    tests/bench/ratios.sh
    tests/bench/what_if.sh
    ./target/release/signoff-bench-pages
    tests/bench/audit_verify.sh

# The test OpenID Provider (Node), the MCP test client (Python, pinned in tests/mcp/requirements.txt,
# in tests/mcp/.venv), the webhook receiver (tests/webhooks), the SMTP receiver (tests/notify) and, where missing, the system
# packages tests use.
test-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v node >/dev/null || missing+=(nodejs npm)
    command -v tmux >/dev/null || missing+=(tmux)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3 python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Schemathesis (tests/tests/openapi.rs), every Python dependency pinned.
    if [ ! -x tests/openapi/.venv/bin/schemathesis ] || [ tests/openapi/requirements.txt -nt tests/openapi/.venv/bin/schemathesis ]; then
        python3 -m venv tests/openapi/.venv
        tests/openapi/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/openapi/requirements.txt
        touch tests/openapi/.venv/bin/schemathesis
    fi
    if [ ! -d tests/oidc-provider/node_modules ] || [ tests/oidc-provider/package-lock.json -nt tests/oidc-provider/node_modules ]; then
        (cd tests/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
    fi
    # The webhook receiver verifies with the official Standard Webhooks package, pinned.
    if [ ! -x tests/notify/.venv/bin/python ] || [ tests/notify/requirements.txt -nt tests/notify/.venv/installed ]; then
        python3 -m venv tests/notify/.venv
        tests/notify/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/notify/requirements.txt
        touch tests/notify/.venv/installed
    fi
    if [ ! -x tests/webhooks/.venv/bin/python ] || [ tests/webhooks/requirements.txt -nt tests/webhooks/.venv/installed ]; then
        python3 -m venv tests/webhooks/.venv
        tests/webhooks/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/webhooks/requirements.txt
        touch tests/webhooks/.venv/installed
    fi
    if [ ! -x tests/mcp/.venv/bin/python ] || [ tests/mcp/requirements.txt -nt tests/mcp/.venv/installed ]; then
        python3 -m venv tests/mcp/.venv
        tests/mcp/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/mcp/requirements.txt
        touch tests/mcp/.venv/installed
    fi
