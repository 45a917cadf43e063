# The arithmetic of a pipeline run's long stages (teacher fine-tuning, labelling, students
# that learn from the transfer set) in floating-point operations, from the run's own files,
# beside the stage times in its pipeline.json: how far each stage is from a given peak.
#
# usage: preset_arithmetic.py RUN PEAK_GFLOPS   (needs `tokenizers`; from the repository root)
#   RUN          a finished `cargo xtask pipeline` run folder (runs/full)
#   PEAK_GFLOPS  floating-point operations per second of all cores together, in GFLOP/s
#
# Counts multiply-adds of the matrix products only (2 FLOP each; elementwise work, softmax,
# layer norm and the optimiser are left out, so the times at peak are lower bounds):
# - fine-tuning: every token of every training row, every layer, forward + backward (3×);
#   no padding (the length-bucketed batches add ~20 % over SST-2).
# - labelling: the encoder as `distill teacher label` runs it: the last layer computes keys
#   and values at every token, everything else only at `[CLS]`.
# - students: embedding projection, recurrence and stacked layers, both directions, 3× for
#   training, every epoch over the training share and the transfer set; the first layer's
#   projection counted per token (the fused step does it once per distinct token of a
#   batch, so this overcounts it).
import json
import sys

from tokenizers import Tokenizer


def tsv_texts(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = header.index("sentence")
        return [line.rstrip("\n").split("\t")[col] for line in f]


def token_counts(tok, texts, special):
    counts = []
    for i in range(0, len(texts), 10_000):
        for e in tok.encode_batch(texts[i : i + 10_000], add_special_tokens=special):
            counts.append(len(e.ids))
    return counts


def main():
    run, peak = sys.argv[1], float(sys.argv[2]) * 1e9
    pipeline = json.load(open(f"{run}/pipeline.json"))
    seconds = {s["name"]: s.get("seconds") for s in pipeline["stages"]}
    commands = {s["name"]: s["command"] for s in pipeline["stages"]}
    cfg = json.load(open(f"{run}/teacher/config.json"))
    d, inner, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    tok = Tokenizer.from_file(f"{run}/teacher/tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    train = tsv_texts(f"{run}/data/train.tsv")
    augment = tsv_texts(f"{run}/data/augment.tsv")
    train_t = token_counts(tok, train, True)
    augment_t = token_counts(tok, augment, True)

    def layer_macs(n):  # one encoder layer over a sentence of n tokens
        return n * (4 * d * d + 2 * d * inner) + 2 * n * n * d

    rows = []
    epochs = json.load(open(f"{run}/teacher/training.json"))["epochs"]
    ft = 3 * epochs * sum(layers * layer_macs(n) for n in train_t)
    rows.append(("teacher-finetune", 2 * ft))

    def label_macs(n):
        last = n * 2 * d * d + 2 * d * d + 2 * n * d + 2 * d * inner  # K, V at all; Q, O, FFN at [CLS]
        return (layers - 1) * layer_macs(n) + last

    rows.append(("teacher-label", 2 * sum(label_macs(n) for n in train_t)))
    rows.append(("teacher-label-augment", 2 * sum(label_macs(n) for n in augment_t)))

    # Every student, with its sizes from their saved config.
    share = 0.8  # --val-share 0.2
    for name, cmd in commands.items():
        if not name.startswith("student-"):
            continue
        transfer = "--augment " in cmd
        student = name.removeprefix("student-")
        scfg = json.load(open(f"{run}/students/{student}/best/config.json"))
        e, h, nl = scfg["embedding_dim"], scfg["hidden_size"], scfg["num_layers"]
        words = scfg.get("tokenizer", "words") != "wordpiece"
        if words:  # normalised words: count whitespace-separated words
            tokens = share * sum(len(t.split()) for t in train)
            tokens += transfer * sum(len(t.split()) for t in augment)
        else:  # WordPieces without [CLS]/[SEP]
            tokens = share * sum(n - 2 for n in train_t) + transfer * sum(n - 2 for n in augment_t)
        per_dir = 4 * h * (e + h) + (nl - 1) * 4 * h * (2 * h + h)
        ep = int(cmd.split("--epochs ")[1].split()[0])
        rows.append((name, 2 * 3 * 2 * per_dir * tokens * ep))

    print(f"| stage | GFLOP | at {peak / 1e9:.0f} GFLOP/s | measured | share of peak |")
    print("|---|---|---|---|---|")
    total_peak = total_meas = 0.0
    for name, flop in rows:
        t_peak = flop / peak
        meas = seconds.get(name) or 0.0
        total_peak += t_peak
        total_meas += meas
        share_txt = f"{t_peak / meas:.0%}" if meas else "–"
        print(f"| {name} | {flop / 1e9:,.0f} | {t_peak / 60:.1f} min | {meas / 60:.1f} min | {share_txt} |")
    print(f"| these stages | | {total_peak / 60:.1f} min | {total_meas / 60:.1f} min | {total_peak / total_meas:.0%} |")
    print(f"all stages: {sum(v or 0 for v in seconds.values()) / 60:.1f} min measured")


if __name__ == "__main__":
    main()
