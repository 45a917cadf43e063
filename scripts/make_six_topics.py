"""Writes fixtures/six-topics/{train,dev,unlabelled}.jsonl: a synthetic 6-class topic
task with string labels, in JSON lines as `datasets.Dataset.to_json` writes them, for the
pipeline's smoke test of N classes. Each text mixes words of its topic with shared filler
words, so a model has something to learn and nothing is trivial. Deterministic (seed 7).

usage: python3 scripts/make_six_topics.py
"""
import json, os, random

TOPICS = {
    "sports": "goal match team coach league score season player stadium referee",
    "weather": "rain storm sunny forecast cloud wind snow humid temperature breeze",
    "food": "recipe dinner spicy bread cheese oven sauce flavour dessert kitchen",
    "music": "guitar album concert melody singer chorus drums rhythm band song",
    "travel": "flight hotel passport beach luggage journey airport tourist map train",
    "tech": "software laptop network server code battery chip screen update phone",
}
FILLER = "the a and of to in it is was for on with that this very really quite some".split()

def text(rng, topic):
    words = rng.sample(TOPICS[topic].split(), rng.randint(1, 3))
    words += rng.choices(FILLER, k=rng.randint(3, 9))
    # A word of another topic now and then, so the classes overlap a little.
    if rng.random() < 0.3:
        other = rng.choice([t for t in TOPICS if t != topic])
        words.append(rng.choice(TOPICS[other].split()))
    rng.shuffle(words)
    return " ".join(words)

def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

rng = random.Random(7)
out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "six-topics")
os.makedirs(out, exist_ok=True)
names = sorted(TOPICS)
for split, n in (("train", 360), ("dev", 90)):
    rows = []
    for i in range(n):
        topic = names[i % len(names)]
        rows.append({"idx": i, "text": text(rng, topic), "label": topic})
    rng.shuffle(rows)
    write(os.path.join(out, f"{split}.jsonl"), rows)
write(os.path.join(out, "unlabelled.jsonl"),
      [{"text": text(rng, names[i % len(names)])} for i in range(120)])
