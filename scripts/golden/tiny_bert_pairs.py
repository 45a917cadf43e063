"""Golden outputs of the tiny random BERT on sentence pairs, from transformers.

Loads `fixtures/tiny-bert` with transformers' fast tokenizer and
`BertForSequenceClassification` (float32, CPU, `model.eval()`), encodes a handful of
pairs as `tokenizer(firsts, seconds, truncation=True, max_length=MAX_LENGTH,
padding=True)` (truncation `longest_first`), and writes the input ids, token type ids,
attention mask and logits to `fixtures/tiny-bert-pairs.json`, which
`crates/teacher/tests/pairs.rs` compares against.

    /work/venv-torch/bin/python scripts/golden/tiny_bert_pairs.py
"""

import json
import pathlib

import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, BertForSequenceClassification

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
MODEL = FIXTURES / "tiny-bert"
OUT = FIXTURES / "tiny-bert-pairs.json"

# Small enough that the long pairs are cut: 3 specials leave 13 tokens of text.
MAX_LENGTH = 16

LONG = "the acting , costumes , music , cinematography and sound are all astounding"
PAIRS = [
    ("a charming and often affecting journey .", "is it a good film ?"),
    # An empty second text: [CLS] a [SEP] [SEP], the last [SEP] of type 1. (This is the
    # batched call's reading, the one `datasets.map(batched=True)` and run_glue use; a
    # single call `tok(a, "")` takes the empty pair for no pair and gives [CLS] a [SEP].)
    ("unflinchingly bleak and desperate", ""),
    # Longer first text: it alone is cut.
    (LONG, "it works ."),
    # Longer second text: it alone is cut.
    ("it works .", LONG),
    # Both long, the first longer: both cut, 13 tokens shared 6 / 7.
    (LONG + " given the production", LONG),
    # Both long, the second longer.
    (LONG, LONG + " given the production"),
    # Equal lengths (a tie), both cut.
    (LONG, LONG.replace("music", "dance")),
    # Accents, punctuation, case: the BERT normaliser on both sides.
    ("Héllo   WORLD!!  21 cats", "naïve café; 3.5 stars"),
]


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL)
    assert tok.is_fast, "the golden must come from the fast (tokenizers) tokenizer"
    model = BertForSequenceClassification.from_pretrained(MODEL, dtype=torch.float32)
    model.eval()
    firsts = [a for a, _ in PAIRS]
    seconds = [b for _, b in PAIRS]
    enc = tok(
        firsts,
        seconds,
        truncation=True,
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
        return_token_type_ids=True,
    )
    with torch.no_grad():
        logits = model(**enc).logits
    mask = enc["attention_mask"].tolist()
    tokens = [
        tok.convert_ids_to_tokens(ids[: sum(m)])
        for ids, m in zip(enc["input_ids"].tolist(), mask)
    ]
    golden = {
        "note": "tiny-bert on sentence pairs; written by scripts/golden/tiny_bert_pairs.py",
        "versions": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        "max_length": MAX_LENGTH,
        "pairs": [list(p) for p in PAIRS],
        "tokens": tokens,
        "input_ids": enc["input_ids"].tolist(),
        "token_type_ids": enc["token_type_ids"].tolist(),
        "attention_mask": mask,
        "logits": logits.tolist(),
    }
    OUT.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
    for t in tokens:
        print(len(t), " ".join(t))


if __name__ == "__main__":
    main()
