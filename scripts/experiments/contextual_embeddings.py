# A copy of a teacher folder whose word-embedding table holds, per WordPiece, the mean of the
# teacher's hidden state (layer LAYER, default the last) over its occurrences in TRAIN_TSV: for
# `distill student train --init-embeddings teacher --teacher OUT_DIR`, which reduces it by PCA.
# usage: contextual_embeddings.py TEACHER_DIR TRAIN_TSV OUT_DIR [LAYER]   (needs torch, transformers)
import sys, shutil, torch
from transformers import AutoTokenizer, BertForSequenceClassification
from safetensors.torch import load_file, save_file
tdir, tsv, out = sys.argv[1:4]; layer = int(sys.argv[4]) if len(sys.argv) > 4 else -1
torch.set_num_threads(2)
tok = AutoTokenizer.from_pretrained(tdir)
model = BertForSequenceClassification.from_pretrained(tdir).eval()
texts = [l.rstrip('\n').split('\t')[0] for l in list(open(tsv))[1:]]
texts = sorted(set(texts), key=len)
V, H = model.config.vocab_size, model.config.hidden_size
sums = torch.zeros(V, H, dtype=torch.float64); counts = torch.zeros(V, dtype=torch.float64)
with torch.no_grad():
    for i in range(0, len(texts), 256):
        enc = tok(texts[i:i+256], padding=True, truncation=True, max_length=128, return_tensors='pt')
        hs = model(**enc, output_hidden_states=True).hidden_states[layer]
        ids = enc['input_ids']; mask = enc['attention_mask'].bool() & (ids != tok.cls_token_id) & (ids != tok.sep_token_id)
        sums.index_add_(0, ids[mask], hs[mask].double()); counts.index_add_(0, ids[mask], torch.ones(int(mask.sum()), dtype=torch.float64))
seen = counts > 0
print('tokens seen', int(seen.sum()))
w = load_file(f'{tdir}/model.safetensors')
key = [k for k in w if k.endswith('word_embeddings.weight')][0]
table = w[key].float().clone()
ctx = (sums[seen] / counts[seen, None]).float()
# unseen rows: the mean contextual vector (keeps them inside the same space for the PCA)
table[:] = ctx.mean(0); table[seen] = ctx
shutil.rmtree(out, ignore_errors=True); shutil.copytree(tdir, out)
w[key] = table.to(w[key].dtype).contiguous()
save_file(w, f'{out}/model.safetensors', metadata={'format': 'pt'})
