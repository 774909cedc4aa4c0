"""How TextFooler's sentence threshold maps onto the packaged MiniLM (docs/attacks.md#other-attacks-textfooler-and-pwws).

    ../shared/bin/offline .venv/bin/python scripts/textfooler_window_similarity.py

One random non-stop word in each of 60 MR dev sentences (seed 0), its TextFooler candidates (50
nearest counter-fitted neighbours, cosine >= 0.5, real words), and MiniLM's cosine and angular
similarity between the 15-word windows around the swap, before and after: the share of swaps that
TextFooler's threshold (angular 0.840845057) keeps.
"""
import math, random, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from attack_workers.attack.offline import import_textattack
import_textattack()
import numpy as np, torch
torch.set_num_threads(1)
from textattack.shared import AttackedText
from attack_workers.lexicon.vectors import LexiconSpec, load_lexicon
from attack_workers.attack.sentence_encoder import load_sentence_model
from attack_workers.attack.word_swaps import CounterFittedNeighbourSwap
from attack_workers.lexicon.relations import is_english_word
from attack_workers.lexicon.stopwords import NLTK_ENGLISH
from vda.config import DataConfig
from vda.data import load_task
lex = load_lexicon(LexiconSpec())
model = load_sentence_model("default")
swap = CounterFittedNeighbourSwap(lex, 50, 0.5, is_word=is_english_word)
task = load_task(DataConfig(dataset="mr"))
dev = task.splits["dev"]
rng = random.Random(0)
pairs = []
for ex in rng.sample(list(dev), 60):
    text = AttackedText(ex.text_a)
    idx = [i for i, w in enumerate(text.words) if w.lower() not in NLTK_ENGLISH]
    if not idx: continue
    i = rng.choice(idx)
    for cand in swap(text, indices_to_modify=[i])[:50]:
        a = text.text_window_around_index(i, 15); b = cand.text_window_around_index(i, 15)
        pairs.append((a, b))
A = model.encode([a for a, _ in pairs], convert_to_tensor=True, batch_size=64)
B = model.encode([b for _, b in pairs], convert_to_tensor=True, batch_size=64)
cos = torch.nn.functional.cosine_similarity(A, B).clamp(-1, 1).numpy()
ang = 1 - np.arccos(cos) / math.pi
print(f"{len(pairs)} swaps: MiniLM window cosine median {np.median(cos):.3f}, p10 {np.percentile(cos,10):.3f}; "
      f"angular sim median {np.median(ang):.3f}; share >= 0.840845 (cos >= {math.cos((1-0.840845057)*math.pi):.4f}): "
      f"{(ang >= 0.840845057).mean():.3f}")
for q in (0.5, 0.75, 0.9):
    print(f"  share of swaps kept at angular {q}: {(ang >= q).mean():.3f}")
