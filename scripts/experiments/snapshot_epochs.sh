#!/bin/bash
# Beside a running `distill student train --out RUN`: after each epoch copies RUN/last to
# RUN/snap/ep-N and appends that checkpoint's accuracy on DEV to RUN/dev_curve.txt. Stops once
# RUN/done exists.  usage: snapshot_epochs.sh RUN DEV   (from the repository root)
run=$1; dev=$2; seen=0
while [ ! -f "$run/done" ]; do
  n=$(wc -l < "$run/metrics.jsonl" 2>/dev/null || echo 0)
  if [ "$n" -gt "$seen" ]; then
    # metrics.jsonl is written before last/ is swapped in: wait for last/ to hold epoch n.
    until [ "$(python3 -c "import json; print(json.load(open('$run/last/state.json'))['epochs_done'])" 2>/dev/null)" = "$n" ]; do sleep 1; done
    mkdir -p "$run/snap" && cp -r "$run/last" "$run/snap/ep-$n"
    acc=$(target/release/distill eval --model "$run/snap/ep-$n" --data "$dev" --json |
      python3 -c "import json,sys; print(json.load(sys.stdin)['acc'])")
    echo "epoch $n dev $acc" >> "$run/dev_curve.txt"; seen=$n
  fi
  sleep 5
done
