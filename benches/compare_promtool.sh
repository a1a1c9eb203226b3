#!/usr/bin/env bash
# Ember's append throughput next to `promtool tsdb bench write`, same label sets, same work, same run.
#
#   benches/compare_promtool.sh [RUNS] [SYNC]
#
# Label sets come from the shared benchmark's loadgen (`series-json`, 9,904 series by default); both
# tools append 1,440 scrapes (rounded up to 1,500) in shards of 1,000 series, committing once per scrape.
# Runs alternate promtool, ember, promtool, ember … so drift on a noisy machine hits both alike.
# SYNC is Ember's WAL sync policy: `never` (default; what Prometheus does on commit), `every-commit`,
# or a number of milliseconds between background fsyncs.
set -euo pipefail
RUNS=${1:-3}
SYNC=${2:-never}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
command -v promtool >/dev/null || { echo "needs promtool (Debian package prometheus)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOADGEN_TARGET=${LOADGEN_TARGET:-/tmp/bench-loadgen-target}
(cd "$SHARED" && CARGO_TARGET_DIR=$LOADGEN_TARGET cargo build --release --quiet --manifest-path bench/loadgen/Cargo.toml)
cargo build --release --quiet -p ember-benches --bin bench_write --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$SHARED" && "$LOADGEN_TARGET/release/loadgen" series-json --out "$WORK/series.json" > /dev/null)
N=$(wc -l < "$WORK/series.json")
STEPS=$(cd "$SHARED" && "$LOADGEN_TARGET/release/loadgen" info | jq '.steps')
echo "series=$N scrapes=$STEPS runs=$RUNS ember_sync=$SYNC"
for r in $(seq 1 "$RUNS"); do
  rm -rf "$WORK/p" "$WORK/e"
  p=$(promtool tsdb bench write --out="$WORK/p" --metrics="$N" --scrapes="$STEPS" "$WORK/series.json" 2>/dev/null | grep -o 'samples/sec: [0-9.e+]*' | awk '{print $2}')
  e=$("$CARGO_TARGET_DIR/release/bench_write" "$WORK/series.json" --metrics "$N" --scrapes "$STEPS" --out "$WORK/e" --sync "$SYNC" --replay)
  es=$(grep -o 'samples/sec: [0-9.e+]*' <<< "$e" | awk '{print $2}')
  rp=$(grep -o '[0-9]* samples per CPU-second' <<< "$e" | awk '{print $1}')
  awk -v r="$r" -v p="$p" -v e="$es" -v rp="$rp" 'BEGIN {printf "run %d: promtool %.2fM samples/s, ember %.2fM samples/s, ratio %.2fx; ember WAL replay %.1fM samples/CPU-s\n", r, p/1e6, e/1e6, e/p, rp/1e6}'
done
