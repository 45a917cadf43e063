"""PyTorch timing reference for the BiLSTM student (the seed's SimpleLSTM), to pair with
`distill bench` on the same machine in the same run.

Timing only: whitespace tokens (no stemming), the 80% split of train (53,879 sentences),
batch 32, Adam, CE on two logits; batches drawn from length buckets (sorted chunks of
100 batches, shuffled) so padding is as small as candle-distill's; dev inference in
batches of 256 and one sentence at a time.
usage: python torch_student_bench.py TRAIN.tsv DEV.tsv OUT.json [--emb 16 --hid 8 --epochs 2 --layers 1]

Copied from the project's shared reference (shared/reference/torch_student_bench.py), which
issue 11 names as the other side of every comparison; `distill bench --compare-pytorch PYTHON`
runs this copy. Changed here: `--epochs 0` times inference only (no epoch fields), and
`--threads` (default 2, as before) sets torch's thread count, and `--layers` (default 1, as
before) stacks BiLSTM layers for a deeper student. Everything timed is unchanged.
"""
import argparse, json, random, time
import torch, torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("train"); p.add_argument("dev"); p.add_argument("out")
p.add_argument("--emb", type=int, default=16); p.add_argument("--hid", type=int, default=8)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--layers", type=int, default=1, help="stacked BiLSTM layers (the head reads the top one's final states)")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--no-pack", action="store_true", help="skip packing: faster, but padding reaches the final states (the seed's way)")
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0); random.seed(0)

def read(path):
    rows = []
    for i, l in enumerate(open(path, encoding="utf-8")):
        if i == 0: continue
        s, y = l.rstrip("\n").rsplit("\t", 1); rows.append((s.lower().split(), int(y)))
    return rows
train, dev = read(a.train), read(a.dev)
random.shuffle(train); train = train[: int(0.8 * len(train))]
from collections import Counter
c = Counter(w for t, _ in train for w in t)
itos = ["<unk>", "<pad>"] + [w for w, _ in sorted(c.items(), key=lambda x: (-x[1], x[0]))[:10000]]
stoi = {w: i for i, w in enumerate(itos)}
def ids(t): return [stoi.get(w, 0) for w in t][:128] or [1]
tr = [(ids(t), y) for t, y in train]; dv = [ids(t) for t, _ in dev]

class SimpleLSTM(nn.Module):
    def __init__(s, V, emb, hid, layers):
        super().__init__(); s.embedding = nn.Embedding(V, emb)
        s.rnn = nn.LSTM(emb, hid, num_layers=layers, bidirectional=True); s.fc = nn.Linear(2 * hid, 2); s.dropout = nn.Dropout(0.5)
    def forward(s, x, lens):
        e = s.embedding(x)
        if not a.no_pack: e = nn.utils.rnn.pack_padded_sequence(e, lens, enforce_sorted=False)
        _, (h, _) = s.rnn(e)
        return s.fc(s.dropout(torch.cat((h[-2], h[-1]), 1)))

def pad(batch):
    L = max(len(b) for b in batch)
    return torch.tensor([b + [1] * (L - len(b)) for b in batch]).t(), torch.tensor([len(b) for b in batch])

def batches(rows, bs):
    idx = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]), random.random()))
    bl = [idx[i:i + bs] for i in range(0, len(idx) - bs + 1, bs)]; random.shuffle(bl); return bl

m = SimpleLSTM(len(itos), a.emb, a.hid, a.layers); opt = torch.optim.Adam(m.parameters(), 1e-3); ce = nn.CrossEntropyLoss()
epochs = []
for ep in range(a.epochs):
    m.train(); t0 = time.perf_counter()
    for b in batches(tr, 32):
        x, L = pad([tr[i][0] for i in b]); y = torch.tensor([tr[i][1] for i in b])
        loss = ce(m(x, L), y); opt.zero_grad(); loss.backward(); opt.step()
    epochs.append(time.perf_counter() - t0)
m.eval()
with torch.no_grad():
    order = sorted(range(len(dv)), key=lambda i: len(dv[i]))
    t0 = time.perf_counter()
    for r in range(5):
        for i in range(0, len(order), 256):
            x, L = pad([dv[j] for j in order[i:i + 256]]); m(x, L)
    thr = 5 * len(dv) / (time.perf_counter() - t0)
    lat = []
    for j in range(len(dv)):
        x, L = pad([dv[j]]); t0 = time.perf_counter(); m(x, L); lat.append(time.perf_counter() - t0)
    lat.sort()
res = {"torch": torch.__version__, "packed": not a.no_pack, "emb": a.emb, "hid": a.hid, "layers": a.layers, "train_sentences": len(tr),
       "threads": a.threads, "epoch_s": epochs, "best_epoch_s": min(epochs) if epochs else None, "dev_sent_per_s_batch256": thr,
       "latency_us_median": 1e6 * lat[len(lat) // 2],
       "params": sum(p.numel() for p in m.parameters())}
json.dump(res, open(a.out, "w"), indent=1); print(json.dumps(res))
