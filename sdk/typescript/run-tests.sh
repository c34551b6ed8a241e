#!/usr/bin/env bash
# The TypeScript SDK's tests: installs the pinned packages (npm ci) when node_modules is missing
# or older than package-lock.json; when a source is newer than the last build, builds dist/ and
# type-checks the README's examples (typecheck/); then runs Node's test runner against a real
# `signoff-server --dev` (SIGNOFF_SERVER_BIN, default ../../target/debug/signoff-server) on
# SQLite, and on Postgres when TEST_POSTGRES_URL is set (SIGNOFF_REQUIRE_POSTGRES=1: no Postgres
# is a failure). Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi

if [ ! -f .build-stamp ] || [ ! -f dist/index.js ] || [ -n "$(find src typecheck tsconfig.json package-lock.json -newer .build-stamp -print -quit)" ]; then
    rm -rf dist
    npx --no-install tsc -p tsconfig.json
    # The README's examples must type-check against what was just built.
    npx --no-install tsc -p typecheck/tsconfig.json
    touch .build-stamp
fi

exec node --test --test-reporter=spec "$@" test/*.test.mjs
