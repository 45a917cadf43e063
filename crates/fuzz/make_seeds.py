#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (run from this folder). The student's
config seeds must match the fixture student that `targets.rs` builds (vocab_size 22)."""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def head(path, n):
    with open(os.path.join(REPO, path), "rb") as f:
        return b"".join(f.readline() for _ in range(n))


# Data files.
train = head("assets/sst2/train.tsv", 12)
put("dataset_tsv", "sst2_train_head.tsv", train)
put("dataset_tsv", "sst2_dev_head.tsv", head("assets/sst2/dev.tsv", 6))
put("dataset_tsv", "empty", b"")
put("dataset_tsv", "header_only", b"sentence\tlabel\n")
put("dataset_tsv", "bom", b"\xef\xbb\xbfsentence\tlabel\nfine\t1\n")
put("dataset_tsv", "crlf", train.replace(b"\n", b"\r\n"))
put("dataset_tsv", "cr_only", train.replace(b"\n", b"\r"))
put("dataset_tsv", "quotes", b'sentence\tlabel\n"a ""quoted"" film"\t1\n\'s\t0\n')
put("dataset_tsv", "unlabelled_index", b"index\tsentence\n0\tfirst one\n1\t\n2\tthird\n")
put("dataset_tsv", "label_first", b"label\tsentence\n1\tgood\n0\tbad\n")
put("dataset_tsv", "huge_field", b"sentence\tlabel\n" + b"word " * 4000 + b"\t1\n")
put("dataset_tsv", "invalid_utf8", b"sentence\tlabel\ngood\t1\n\xff\xfe bad\t0\n")
put("dataset_tsv", "bad_rows", b"sentence\tlabel\na\tb\t1\nno tab\n\t2\n\n")
put("dataset_tsv", "no_trailing_newline", b"sentence\tlabel\nlast\t0")

csv = b"sentence,label\n" + b"".join(
    b'"' + line.split(b"\t")[0].replace(b'"', b'""') + b'",' + line.split(b"\t")[1]
    for line in train.splitlines(keepends=True)[1:]
)
put("dataset_csv", "sst2_train_head.csv", csv)
put("dataset_csv", "empty", b"")
put("dataset_csv", "header_only", b"sentence,label\n")
put("dataset_csv", "bom", b"\xef\xbb\xbfsentence,label\nfine,1\n")
put("dataset_csv", "crlf", csv.replace(b"\n", b"\r\n"))
put("dataset_csv", "cr_only", csv.replace(b"\n", b"\r"))
put("dataset_csv", "quotes", b'sentence,label\n"a, ""quoted"" one",1\n"two\nlines",0\n"",1\n')
put("dataset_csv", "unterminated_quote", b'sentence,label\n"never closed,1\n')
put("dataset_csv", "unlabelled_index", b"index,sentence\n0,first\n1,\n")
put("dataset_csv", "huge_field", b"sentence,label\n\"" + b"word, " * 3000 + b"\",0\n")
put("dataset_csv", "invalid_utf8", b"sentence,label\nok,1\n\xfe\xff,0\n")
put("dataset_csv", "bad_rows", b"sentence,label\na,b,1\nlonely\nx,7\n")
put("dataset_csv", "tabs_in_text", b"sentence,label\n\"tab\there\",1\n\"cr\rhere\",0\n")

# vocab.json
itos = ["<unk>", "<pad>", "it", "s", "a", "charm", "and", "journey", "eighty-nin", "\u00e9t\u00e9"]
put("vocab_json", "saved", json.dumps({"format": "candle-distill-vocab/1", "itos": itos,
                                      "specials": ["<unk>", "<pad>"]}, indent=2))
put("vocab_json", "no_format", json.dumps({"itos": itos[:4], "specials": ["<unk>", "<pad>"]}))
put("vocab_json", "mask_special", json.dumps({"itos": ["<unk>", "<pad>", "<mask>", "w"],
                                             "specials": ["<unk>", "<pad>", "<mask>"]}))
put("vocab_json", "duplicate", '{"itos": ["<unk>", "<pad>", "a", "a"], "specials": ["<unk>", "<pad>"]}')
put("vocab_json", "bad_prefix", '{"itos": ["<pad>", "<unk>"], "specials": ["<pad>"]}')
put("vocab_json", "escapes", '{"itos": ["<unk>", "<pad>", "\\u0000", "\\ud83d\\ude00", "\\t"], "specials": ["<unk>", "<pad>"]}')
put("vocab_json", "lone_surrogate", '{"itos": ["<unk>", "<pad>", "\\ud800"], "specials": ["<unk>", "<pad>"]}')
put("vocab_json", "empty", b"")
put("vocab_json", "empty_object", b"{}")
put("vocab_json", "deep", b"[" * 200 + b"]" * 200)
put("vocab_json", "wrong_types", '{"itos": [1, 2], "specials": {"a": 1}, "format": 3}')

# Student config.json (the fixture student: words, vocab 22, original preset).
student = {"preset": "original", "vocab_size": 22, "embedding_dim": 16, "hidden_size": 8,
           "num_layers": 1, "dropout": 0.5, "num_outputs": 2, "tokenizer": "words",
           "normalize": True, "max_len": 128}
put("student_config", "fixture", json.dumps(student, indent=2))
put("student_config", "plain_max_len_0", json.dumps(dict(student, normalize=False, max_len=0)))
put("student_config", "two_layers", json.dumps(dict(student, num_layers=2)))
put("student_config", "wordpiece", json.dumps(dict(student, tokenizer="wordpiece")))
put("student_config", "huge_sizes", json.dumps(dict(student, hidden_size=2**62, embedding_dim=2**62)))
put("student_config", "many_layers", json.dumps(dict(student, num_layers=10**15)))
put("student_config", "missing_field", json.dumps({k: v for k, v in student.items() if k != "max_len"}))
put("student_config", "negative", json.dumps(dict(student, vocab_size=-1)))
put("student_config", "empty", b"")

# Teacher config.json.
with open(os.path.join(REPO, "fixtures/tiny-bert/config.json"), "rb") as f:
    tiny = f.read()
put("teacher_config", "tiny_bert", tiny)
t = json.loads(tiny)
required = {k: t[k] for k in ["vocab_size", "hidden_size", "num_hidden_layers",
                              "num_attention_heads", "intermediate_size", "max_position_embeddings"]}
put("teacher_config", "required_only", json.dumps(required))
put("teacher_config", "base_model", json.dumps(dict(t, architectures=["BertModel"])))
put("teacher_config", "three_labels", json.dumps(dict(t, id2label={"0": "a", "1": "b", "2": "c"})))
put("teacher_config", "num_labels_huge", json.dumps(dict(required, num_labels=10**12)))
put("teacher_config", "id2label_gap", json.dumps(dict(t, id2label={"0": "a", "5": "b"})))
put("teacher_config", "relu_eps", json.dumps(dict(t, hidden_act="relu", layer_norm_eps=1e-5)))
put("teacher_config", "roberta", json.dumps(dict(t, model_type="roberta")))
put("teacher_config", "position_relative", json.dumps(dict(t, position_embedding_type="relative_key")))
put("teacher_config", "empty", b"")


# Logit caches (safetensors: u64 header length, JSON header, little-endian data).
def safetensors(tensors, meta):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


meta = {"format": "candle-distill-logits/1", "teacher": "tiny-bert", "teacher_sha256": "ab" * 32,
        "data_sha256": "cd" * 32, "count": "3"}
vals = [1.5, -1.5, -2.0, 2.25, 0.0, 1e-38]
put("logits_cache", "valid", safetensors({"logits": ("F32", [3, 2], f32(vals))}, meta))
put("logits_cache", "one_column", safetensors({"logits": ("F32", [3, 1], f32(vals[:3]))}, meta))
put("logits_cache", "non_finite", safetensors({"logits": ("F32", [3, 2], f32([float("nan"), float("inf"), -float("inf"), 0, 1, 2]))}, meta))
put("logits_cache", "zero_rows", safetensors({"logits": ("F32", [0, 2], b"")}, dict(meta, count="0")))
put("logits_cache", "count_mismatch", safetensors({"logits": ("F32", [3, 2], f32(vals))}, dict(meta, count="99999999999999999999")))
put("logits_cache", "f16", safetensors({"logits": ("F16", [3, 2], b"\0" * 12)}, meta))
put("logits_cache", "no_metadata", safetensors({"logits": ("F32", [3, 2], f32(vals))}, None))
put("logits_cache", "huge_header_len", struct.pack("<Q", 2**63) + b"{}")
put("logits_cache", "truncated", safetensors({"logits": ("F32", [3, 2], f32(vals))}, meta)[:-5])
put("logits_cache", "empty", b"")

# predict's stdin.
lines = head("assets/sst2/dev.tsv", 9).split(b"\n")[1:]
put("predict_stdin", "sst2_dev_lines", b"\n".join(l.split(b"\t")[0] for l in lines))
put("predict_stdin", "empty_lines", b"\n\n\r\n \n\t\n")
put("predict_stdin", "invalid_utf8", b"good film\n\xff\xfe\xc3 bad\n\xed\xa0\x80 surrogate\nok\n")
put("predict_stdin", "ten_thousand_words", b" ".join(b"w%d" % (i % 97) for i in range(10000)) + b"\n")
put("predict_stdin", "long_numbers", b"1234567890123456789012345678901234567 and 0000000000001 or 99 , 007\n")
put("predict_stdin", "unicode", "na\u00efve caf\u00e9 \u2014 \U0001F600 e\u0301 \u4e2d\u6587 [MASK] <unk>\n".encode())
put("predict_stdin", "cr_only", b"first\rsecond\rthird")
put("predict_stdin", "nul_bytes", b"a\0b\n\0\n")
put("predict_stdin", "empty", b"")
