#!/usr/bin/env bash
# GPU acceptance run: one command on a GPU machine, under 8 minutes, one JSON of results.
#
#   scripts/gpu-acceptance.sh BUNDLE [--device cuda|cpu] [--out results.json]
#                             [--minilm DIR] [--data DIR] [--label-rows N] [--budget SECONDS]
#
# BUNDLE is what `cargo xtask cuda-build --bundle gpu-bundle.tar.zst` writes (a stripped CUDA
# `distill`, the teacher's parity test binaries, their fixtures and this script), as the
# .tar.zst or unpacked. The machine needs the CUDA 13 libraries (libcublas.so.13,
# libcudart.so.13, libcurand.so.10, libnvrtc.so.13) and a driver; a Python with PyTorch for
# CUDA 13 has the libraries in site-packages/nvidia/cu13/lib, which is added to the path.
#
# It runs, in order, and records each step's numbers (or why it did not run):
#  1. tiny-bert parity on the device: token ids, logits, loss, gradients against the
#     transformers goldens (tolerances as in the CPU tests: logits and loss 1e-4, gradients
#     1e-3 relative);
#  2. MiniLM parity (last hidden state and pooler, 1e-4), when MiniLM's weights are at hand
#     (--minilm DIR, or the hf-hub cache);
#  3. 200 fine-tune steps of MiniLM (batch 32, f32): s/step;
#  4. labelling the SST-2 training sentences (all 67,349 unless --label-rows): sentences/s;
#  5. the device's logits against the CPU's on the first 2,000 of them (|Δ| ≤ 1e-3);
#  6. a full one-epoch fine-tune with dev accuracy, if the time budget allows.
# `--device cpu` runs the same steps on the CPU (the half that is tested without a GPU).
set -uo pipefail
export NO_COLOR=1 RUST_LOG_STYLE=never

bundle=${1:?usage: gpu-acceptance.sh BUNDLE [--device cuda|cpu] [--out FILE] [--minilm DIR] [--data DIR] [--label-rows N] [--budget S]}
shift
device=cuda out=gpu-acceptance.json minilm="" data="" label_rows=0 budget=450 steps=200
while [ $# -gt 0 ]; do
    case $1 in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --minilm) minilm=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --label-rows) label_rows=$2; shift 2 ;;
        --budget) budget=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$(realpath -m "$out")

if [ -f "$bundle" ]; then
    tar --zstd -xf "$bundle" -C "$work" || { echo "cannot unpack $bundle" >&2; exit 1; }
    root=$work
else
    root=$(realpath "$bundle")
fi
bin=$root/bin
fixtures=$root/fixtures
[ -n "$data" ] || data=$root/assets/sst2
for f in "$bin/distill" "$fixtures/tiny-bert/golden.json" "$data/train.tsv" "$data/dev.tsv"; do
    [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

# CUDA 13 libraries from PyTorch's wheels, when there.
cu13=$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null)
[ -n "$cu13" ] && [ -d "$cu13" ] && export LD_LIBRARY_PATH="$cu13${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

results=$work/results.jsonl
record() { echo "$1" >>"$results"; echo "$1"; }
# A log's tail as a JSON string, without terminal colour codes.
json_str() { python3 -c 'import json,re,sys; print(json.dumps(re.sub(r"\x1b\[[0-9;]*m", "", sys.stdin.read())))'; }
# The number after a label in a log ("… 0.025 s/step" → 0.025).
grab() { grep -oE "$1" "$2" | head -1 | grep -oE '[0-9.]+(e-?[0-9]+)?' | head -1; }

run_step() { # name, log, command…
    local name=$1 log=$2; shift 2
    local t0=$(date +%s.%N)
    "$@" >"$log" 2>&1
    local rc=$?
    local secs=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
    echo "$rc $secs"
}

# 1. tiny-bert parity.
read rc secs < <(run_step tiny "$work/tiny.log" env DISTILL_TEST_DEVICE="$device" \
    DISTILL_FIXTURES="$fixtures" "$bin/tiny_bert" --nocapture --test-threads=1)
logits_err=$(grab 'logits, Eval: max abs error [0-9.e-]+' "$work/tiny.log")
record "{\"step\":\"tiny_bert_parity\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"seconds\":$secs,\"logits_max_abs_error\":\"${logits_err:-n/a}\",\"tolerances\":\"logits, loss 1e-4; gradients 1e-3 relative\",\"log\":$(tail -c 3000 "$work/tiny.log" | json_str)}"

# The MiniLM weights: --minilm, else the hf-hub cache.
if [ -z "$minilm" ]; then
    cache=${HF_HOME:-$HOME/.cache/huggingface}/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots
    [ -d "$cache" ] && minilm=$(ls -d "$cache"/*/ 2>/dev/null | head -1)
fi

# 2. MiniLM parity.
if [ -n "$minilm" ] && [ -f "$minilm/model.safetensors" ]; then
    # The test resolves the hub id through an hf-hub cache: lay one out around the folder.
    hub=$work/hf/hub/models--sentence-transformers--all-MiniLM-L6-v2
    mkdir -p "$hub/snapshots" "$hub/refs"
    ln -s "$(realpath "$minilm")" "$hub/snapshots/acceptance"
    printf acceptance >"$hub/refs/main"   # hf-hub reads the ref verbatim: no newline
    read rc secs < <(run_step minilm "$work/minilm.log" env HF_HOME="$work/hf" HF_HUB_OFFLINE=1 \
        DISTILL_TEST_DEVICE="$device" DISTILL_FIXTURES="$fixtures" "$bin/minilm" --nocapture)
    record "{\"step\":\"minilm_parity\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"seconds\":$secs,\"log\":$(tail -c 2000 "$work/minilm.log" | json_str)}"
    base=$minilm
else
    record '{"step":"minilm_parity","skipped":"no MiniLM weights (--minilm DIR or the hf-hub cache)"}'
    base=""
fi

# 3. Fine-tune steps (MiniLM, batch 32, f32).
if [ -n "$base" ]; then
    head -n 1001 "$data/dev.tsv" >"$work/dev-slice.tsv"
    read rc secs < <(run_step finetune "$work/finetune.log" "$bin/distill" teacher finetune \
        --teacher "$base" --train "$data/train.tsv" --dev "$work/dev-slice.tsv" \
        --out "$work/teacher" --max-steps "$steps" --batch-size 32 --device "$device")
    per_step=$(grab '[0-9.]+ s/step' "$work/finetune.log")
    record "{\"step\":\"finetune_steps\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"steps\":$steps,\"seconds_per_step\":\"${per_step:-n/a}\",\"target_seconds_per_step\":0.025,\"wall_seconds\":$secs,\"log\":$(tail -c 1500 "$work/finetune.log" | json_str)}"
else
    record '{"step":"finetune_steps","skipped":"no MiniLM weights"}'
fi

# 4. Labelling (the fine-tuned teacher has a trained head).
if [ -d "$work/teacher" ]; then
    label_data=$data/train.tsv
    if [ "$label_rows" -gt 0 ]; then
        head -n $((label_rows + 1)) "$data/train.tsv" >"$work/label.tsv"
        label_data=$work/label.tsv
    fi
    rows=$(( $(wc -l <"$label_data") - 1 ))
    read rc secs < <(run_step label "$work/label.log" "$bin/distill" teacher label \
        --teacher "$work/teacher" --data "$label_data" --out "$work/logits.safetensors" \
        --batch-size 256 --device "$device")
    per_sec=$(grab '\([0-9.]+/s\)' "$work/label.log")
    record "{\"step\":\"label\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"sentences\":$rows,\"sentences_per_second\":\"${per_sec:-n/a}\",\"target_sentences_per_second\":20000,\"wall_seconds\":$secs,\"log\":$(tail -c 1500 "$work/label.log" | json_str)}"

    # 5. The device's logits against the CPU's.
    head -n 2001 "$data/train.tsv" >"$work/compare.tsv"
    "$bin/distill" teacher label --teacher "$work/teacher" --data "$work/compare.tsv" \
        --out "$work/dev.safetensors" --device "$device" >"$work/cmp.log" 2>&1
    "$bin/distill" teacher label --teacher "$work/teacher" --data "$work/compare.tsv" \
        --out "$work/cpu.safetensors" --device cpu >>"$work/cmp.log" 2>&1
    diff_json=$("$bin/distill" logits diff "$work/dev.safetensors" "$work/cpu.safetensors" \
        --tolerance 1e-3 --json 2>>"$work/cmp.log")
    rc=$?
    record "{\"step\":\"logits_vs_cpu\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"tolerance\":1e-3,\"result\":${diff_json:-null},\"log\":$(tail -c 800 "$work/cmp.log" | json_str)}"
else
    record '{"step":"label","skipped":"no fine-tuned teacher (step 3 did not run)"}'
fi

# 6. A full one-epoch fine-tune, if the budget allows (estimated from step 3).
if [ -n "${per_step:-}" ]; then
    need=$(python3 -c "print(int(67349 / 32 * $per_step * 1.3 + 30))")
    left=$(( budget - $(elapsed) ))
    if [ "$need" -lt "$left" ]; then
        read rc secs < <(run_step epoch "$work/epoch.log" "$bin/distill" teacher finetune \
            --teacher "$base" --train "$data/train.tsv" --dev "$data/dev.tsv" \
            --out "$work/teacher-epoch" --epochs 1 --batch-size 32 --device "$device")
        acc=$(grep -oE 'acc [0-9.]+' "$work/epoch.log" | tail -1 | grep -oE '[0-9.]+')
        record "{\"step\":\"finetune_one_epoch\",\"passed\":$([ "$rc" = 0 ] && echo true || echo false),\"wall_seconds\":$secs,\"dev_accuracy\":\"${acc:-n/a}\",\"log\":$(tail -c 1500 "$work/epoch.log" | json_str)}"
    else
        record "{\"step\":\"finetune_one_epoch\",\"skipped\":\"needs about ${need} s, ${left} s of the budget left\"}"
    fi
fi

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
python3 - "$results" "$out" "$device" "${gpu:-none}" "$(elapsed)" <<'EOF'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
ran = [s for s in steps if "skipped" not in s]
doc = {"device": sys.argv[3], "gpu": sys.argv[4], "seconds": int(sys.argv[5]),
       "all_passed": all(s.get("passed") for s in ran), "steps": steps}
open(sys.argv[2], "w").write(json.dumps(doc, indent=1) + "\n")
print(f"{len(ran)} steps ran, {sum(bool(s.get('passed')) for s in ran)} passed, "
      f"{len(steps) - len(ran)} skipped; results in {sys.argv[2]}")
sys.exit(0 if doc["all_passed"] else 1)
EOF
