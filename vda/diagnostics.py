"""What a checkpoint learned besides accuracy: confidence, its view of a content-free input, embedding drift.

    python -m vda.diagnostics results/study/train/*/best --out results/studies/NAME/diagnostics.csv

Why these three: the authors' VDA path (``vda.mode=code``) feeds the classifier a virtual input
that is nearly the mean embedding at every position, and pulls the real prediction towards the
prediction on it. If that is how it works, it acts like a confidence penalty (lower mean max
probability, lower or higher calibration error than plain fine-tuning), its prediction on an
all-mean-embedding input sits at the class prior, and because the mixture's gradient reaches every
row of the classifier's embedding matrix, the rows of words never seen in training all move by one
shared vector (AdamW normalises per coordinate). Each number separates one explanation of a
robustness gain from the others (docs/results/mechanism-mr.md).

Per checkpoint: ``dev_mean_max_prob`` and ``dev_ece`` (expected calibration error, 15 equal-width
bins, on the dev split the checkpoint was selected on), ``mean_input_probs`` (the class
distribution on an input of ``MEAN_INPUT_LENGTH`` positions, each the classifier's own mean word
embedding, attention on all), ``drift_shared_norm`` (the norm of the mean shift of the embedding
rows of tokens absent from the training split, against the model the run started from) and
``drift_residual`` (the mean distance of those rows' shifts from that shared vector).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vda.batching import EncodedSplit, batch_indices, collate, encode_examples
from vda.checkpoint import MANIFEST_NAME, CheckpointError, checkpoint_hash, load_checkpoint
from vda.config import config_from_dict
from vda.data import DataError, load_task
from vda.mlm import resolve_model_path
from vda.objective import model_inputs

ECE_BINS = 15
MEAN_INPUT_LENGTH = 24  # about an MR sentence in word pieces, [CLS] and [SEP] included


@dataclass(frozen=True)
class Diagnostics:
    checkpoint: str
    checkpoint_hash: str
    run_id: str
    dev_acc: float
    dev_mean_max_prob: float
    dev_ece: float
    mean_input_probs: tuple[float, ...]
    drift_shared_norm: float
    drift_residual: float
    unseen_rows: int


def class_probabilities(model: Any, tokenizer: Any, split: EncodedSplit, batch_size: int = 64) -> tuple[
        torch.Tensor, torch.Tensor]:
    """(softmax probabilities [n, C], labels [n]) over ``split``, in its order."""
    model.eval()
    probs, labels = [], []
    with torch.no_grad():
        for rows in batch_indices(len(split), batch_size, shuffle=False):
            batch = collate(tokenizer, split, rows, torch.device("cpu"))
            logits = model(input_ids=batch["input_ids"], **model_inputs(batch)).logits.float()
            probs.append(torch.softmax(logits, dim=-1))
            labels.append(batch["labels"])
    return torch.cat(probs), torch.cat(labels)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| weighted by the bin's share."""
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += float(inside.float().mean() * (correct[inside].mean() - confidence[inside].mean()).abs())
    return error


def mean_embedding_prediction(model: Any, length: int = MEAN_INPUT_LENGTH) -> tuple[float, ...]:
    """The class distribution on an input whose every position is the model's own mean word embedding."""
    model.eval()
    weight = model.get_input_embeddings().weight.detach()
    embeds = weight.mean(dim=0).expand(1, length, -1)
    with torch.no_grad():
        logits = model(inputs_embeds=embeds, attention_mask=torch.ones(1, length, dtype=torch.long)).logits
    return tuple(round(float(p), 6) for p in torch.softmax(logits.float(), dim=-1)[0])


def shared_drift(initial: torch.Tensor, trained: torch.Tensor, unseen: torch.Tensor) -> tuple[float, float]:
    """(norm of the mean shift of the ``unseen`` rows, mean distance of their shifts from that mean)."""
    shift = (trained[unseen] - initial[unseen]).double()
    if not shift.shape[0]:
        return 0.0, 0.0
    shared = shift.mean(dim=0)
    return float(shared.norm()), float((shift - shared).norm(dim=1).mean())


def unseen_token_rows(train: EncodedSplit, vocab_size: int) -> torch.Tensor:
    """A [V] mask of the token ids that occur in no training example (special tokens occur in all)."""
    unseen = torch.ones(vocab_size, dtype=torch.bool)
    for feature in train.features:
        unseen[torch.tensor(feature["input_ids"])] = False
    return unseen


def initial_embedding(model_spec: str) -> torch.Tensor:
    """The word-embedding matrix of the model a run started from (``config.model``)."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(resolve_model_path(model_spec)).get_input_embeddings().weight.detach()


def diagnose(checkpoint: str | Path) -> Diagnostics:
    """Every diagnostic of one checkpoint, on the data and starting model its manifest names."""
    model, tokenizer, manifest = load_checkpoint(checkpoint)
    cfg = config_from_dict(manifest.config, f"{checkpoint}/manifest.json")
    task = load_task(cfg.data)
    dev = encode_examples(tokenizer, task.splits["dev"], cfg.data.max_length, f"{task.name}/dev")
    train = encode_examples(tokenizer, task.splits["train"], cfg.data.max_length, f"{task.name}/train")
    probs, labels = class_probabilities(model, tokenizer, dev, cfg.eval_batch_size)
    trained = model.get_input_embeddings().weight.detach()
    unseen = unseen_token_rows(train, trained.shape[0])
    shared, residual = shared_drift(initial_embedding(cfg.model), trained, unseen)
    return Diagnostics(checkpoint=str(checkpoint), checkpoint_hash=checkpoint_hash(checkpoint), run_id=manifest.run_id,
                       dev_acc=float((probs.argmax(-1) == labels).float().mean()),
                       dev_mean_max_prob=float(probs.max(dim=-1).values.mean()),
                       dev_ece=expected_calibration_error(probs, labels),
                       mean_input_probs=mean_embedding_prediction(model), drift_shared_norm=shared,
                       drift_residual=residual, unseen_rows=int(unseen.sum()))


def write_csv(rows: list[Diagnostics], out: Path) -> None:
    """One row per checkpoint; ``mean_input_probs`` as space-separated class probabilities.

    Rows already in ``out`` for other checkpoints are kept: a study diagnoses each chunk's
    checkpoints while they exist, and the file (committed with the study's export) keeps them all.
    """
    records = [{**asdict(row), "mean_input_probs": " ".join(f"{p:.6f}" for p in row.mean_input_probs)}
               for row in rows]
    new = {r["checkpoint_hash"] for r in records}
    kept = [r for r in csv.DictReader(out.open()) if r["checkpoint_hash"] not in new] if out.is_file() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows([*kept, *records])


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with the CSV written, 2 when a checkpoint or its data cannot be read (nothing written)."""
    parser = argparse.ArgumentParser(prog="python -m vda.diagnostics", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint directories (manifest.json + model/)")
    parser.add_argument("--out", type=Path, required=True,
                        help="CSV to write, one row per checkpoint (rows of other checkpoints in it are kept)")
    parser.add_argument("--new-only", action="store_true",
                        help="skip checkpoints that already have a row in --out (a study's later chunks)")
    args = parser.parse_args(argv)
    try:
        checkpoints = _not_diagnosed(args.checkpoints, args.out) if args.new_only else args.checkpoints
        with torch.no_grad():
            rows = [diagnose(path) for path in checkpoints]
    except (CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if rows:
        write_csv(rows, args.out)
    print(f"{len(rows)} checkpoint(s) -> {args.out} ({len(args.checkpoints) - len(rows)} already there)")
    return 0


def _not_diagnosed(checkpoints: list[Path], out: Path) -> list[Path]:
    """The checkpoints whose content hash has no row in ``out`` yet (all of them when it does not exist)."""
    done = {r["checkpoint_hash"] for r in csv.DictReader(out.open())} if out.is_file() else set()
    for path in checkpoints:
        if not (path / MANIFEST_NAME).is_file():
            raise CheckpointError(f"{path}: no {MANIFEST_NAME}; pass checkpoint directories")
    return [path for path in checkpoints if checkpoint_hash(path) not in done]


if __name__ == "__main__":
    sys.exit(main())
