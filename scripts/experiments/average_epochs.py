# The mean of the weights of epoch checkpoints RUN/snap/ep-FIRST .. ep-LAST (copies of `last/` taken
# after each epoch) written as a model folder OUT, for `distill eval --model OUT`.
# usage: average_epochs.py RUN FIRST LAST OUT   (needs torch, safetensors)
import sys, shutil
from safetensors.torch import load_file, save_file
run, a, b, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
acc = None
for e in range(a, b + 1):
    d = load_file(f"{run}/snap/ep-{e}/model.safetensors")
    acc = {k: v.clone() for k, v in d.items()} if acc is None else {k: acc[k] + d[k] for k in acc}
n = b - a + 1
shutil.rmtree(out, ignore_errors=True); shutil.copytree(f"{run}/snap/ep-{b}", out)
save_file({k: (v / n).contiguous() for k, v in acc.items()}, f"{out}/model.safetensors")
