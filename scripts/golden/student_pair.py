"""Golden outputs for the pair student: fixtures/student_pair.safetensors.

The siamese student of Tang et al. (2019) as in shared/reference/torch_task_reference.py
(`Student` with --pair): one nn.Embedding + bidirectional nn.LSTM (packed by length) reads each
text, h = [h1; h2; h1*h2; |h1-h2|] -> fc = Sequential(Linear(8H, 2H), ReLU, Linear(2H, C)).
Eval mode (no dropout). Stores the inputs (time-major ids, int64, padded with 1), every
parameter under its state-dict name, the logits, the distillation loss
0.5*CE(logits, labels) + 0.5*MSE(logits, teacher_logits) with its parts, and the gradient of
the loss for every parameter as grad_<name>.

usage: python scripts/golden/student_pair.py [OUT]   (needs torch and safetensors)
"""
import sys
import torch
import torch.nn as nn
from safetensors.torch import save_file

VOCAB, EMB, HID, CLASSES, PAD = 50, 16, 8, 3, 1
OUT = sys.argv[1] if len(sys.argv) > 1 else "fixtures/student_pair.safetensors"


class Student(nn.Module):
    def __init__(s):
        super().__init__()
        s.embedding = nn.Embedding(VOCAB, EMB)
        s.rnn = nn.LSTM(EMB, HID, bidirectional=True)
        s.dropout = nn.Dropout(0.5)
        s.fc = nn.Sequential(nn.Linear(8 * HID, 2 * HID), nn.ReLU(), nn.Linear(2 * HID, CLASSES))

    def encode(s, x, lens):
        e = nn.utils.rnn.pack_padded_sequence(s.embedding(x), lens, enforce_sorted=False)
        _, (h, _) = s.rnn(e)
        return torch.cat((h[-2], h[-1]), 1)

    def forward(s, xa, la, xb, lb):
        h, h2 = s.encode(xa, la), s.encode(xb, lb)
        h = torch.cat((h, h2, h * h2, (h - h2).abs()), 1)
        return s.fc(s.dropout(h))


def pad(seqs):
    t = max(len(x) for x in seqs)
    return torch.tensor([x + [PAD] * (t - len(x)) for x in seqs]).t(), torch.tensor([len(x) for x in seqs])


torch.manual_seed(0)
m = Student()
m.eval()
g = torch.Generator().manual_seed(1)
# Varied lengths, a length-1 text on each side (pack_padded_sequence refuses length 0).
len_a, len_b = [6, 1, 3, 4, 2], [2, 5, 1, 4, 7]
word = lambda: int(torch.randint(2, VOCAB, (1,), generator=g))
texts_a = [[word() for _ in range(n)] for n in len_a]
texts_b = [[word() for _ in range(n)] for n in len_b]
xa, la = pad(texts_a)
xb, lb = pad(texts_b)
labels = torch.tensor([0, 2, 1, 2, 0])
teacher = torch.randn(len(len_a), CLASSES, generator=g) * 2

logits = m(xa, la, xb, lb)
ce = nn.functional.cross_entropy(logits, labels)
mse = nn.functional.mse_loss(logits, teacher)
loss = 0.5 * ce + 0.5 * mse
loss.backward()

out = {
    "ids_a": xa.contiguous(), "lengths_a": la, "ids_b": xb.contiguous(), "lengths_b": lb,
    "labels": labels, "teacher_logits": teacher,
    "logits": logits.detach(), "ce": ce.detach().reshape(1), "mse": mse.detach().reshape(1),
    "loss": loss.detach().reshape(1),
}
for name, p in m.named_parameters():
    out[name] = p.detach().contiguous()
    out["grad_" + name] = p.grad.contiguous()
save_file(out, OUT)
print("wrote", OUT, "loss", loss.item(), "names", [n for n, _ in m.named_parameters()])
