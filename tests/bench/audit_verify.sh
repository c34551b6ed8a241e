#!/usr/bin/env bash
# Times `signoff-server audit verify` (release) on a log of EVENTS events (default 1,000,000)
# written through the engine; the figure lands in target/bench/audit_verify.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
events="${1:-1000000}"
dir=target/bench/audit
./target/release/signoff-bench-audit "$events" "$dir"
start=$(date +%s.%N)
DATABASE_URL="sqlite://$dir/signoff.db" SIGNOFF_DATA_DIR="$dir" RUST_LOG=warn \
    ./target/release/signoff-server audit verify | tee "$dir/verify.out"
end=$(date +%s.%N)
seconds=$(echo "$end - $start" | bc)
printf '| events | audit verify (s) |\n|---|---|\n| %s | %.2f |\n' "$events" "$seconds" | tee target/bench/audit_verify.md
