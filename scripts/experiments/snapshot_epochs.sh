#!/bin/bash
# Beside a running `distill student train --out RUN`: after each epoch copies RUN/last to
# OUT/ep-N and appends that checkpoint's accuracy on DEV to OUT/dev_curve.txt. Stops once
# OUT/done exists. OUT defaults to RUN/snap; give another folder beside a pipeline run, whose
# student folders the pipeline owns.
# usage: snapshot_epochs.sh RUN DEV [OUT]   (from the repository root)
run=$1; dev=$2; out=${3:-$1/snap}; mkdir -p "$out"
# Restarted beside a resumed run: carry on after the epochs already on the curve.
seen=$(wc -l < "$out/dev_curve.txt" 2>/dev/null || echo 0)
while [ ! -f "$out/done" ]; do
  n=$(wc -l < "$run/metrics.jsonl" 2>/dev/null || echo 0)
  if [ "$n" -gt "$seen" ]; then
    # metrics.jsonl is written before last/ is swapped in: wait for last/ to hold epoch n.
    until [ "$(python3 -c "import json; print(json.load(open('$run/last/state.json'))['epochs_done'])" 2>/dev/null)" = "$n" ]; do sleep 1; done
    cp -r "$run/last" "$out/ep-$n"
    acc=$(target/release/distill eval --model "$out/ep-$n" --data "$dev" --json |
      python3 -c "import json,sys; print(json.load(sys.stdin)['acc'])")
    echo "epoch $n dev $acc" >> "$out/dev_curve.txt"; seen=$n
  fi
  sleep 5
done
