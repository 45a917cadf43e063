#!/bin/bash
# Training epochs of two `distill` builds, interleaved round by round so that both see the
# same minutes of a noisy machine; prints every epoch's seconds, then each build's median
# and best. Build the other one into its own target folder first, e.g.
#   git worktree add /tmp/base <commit> && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/tgt-base \
#     cargo build --release -p distill-cli)
# usage: ab_epochs.sh ROUNDS BIN_A BIN_B -- BENCH_ARGS...   (from the repository root)
#   e.g. ab_epochs.sh 3 /tmp/tgt-base/release/distill target/release/distill -- \
#          --train assets/sst2/train.tsv --preset large --num-layers 2 --epochs 2 --repeat 1
set -euo pipefail
rounds=$1; a=$2; b=$3; shift 4
out=$(mktemp)
for _ in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    secs=$("$bin" bench "$@" 2>&1 | grep "seconds per epoch" | sed 's/.*): \[//; s/\]//')
    echo "$bin $secs" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    binary, secs = line.split(" ", 1)
    runs.setdefault(binary, []).extend(float(x) for x in secs.split(","))
for binary, secs in runs.items():
    print(f"{binary}: median {statistics.median(secs):.3f} s, best {min(secs):.3f} s, {len(secs)} epochs")
PY
rm -f "$out"
