"""Classification data: built-in MR, Hugging Face datasets, and local CSV/TSV/JSONL files.

Everything becomes a ``TaskData`` with ``train``/``dev``/``test`` lists of ``Example``. Labels are
integer ids into ``label_names``. Bad input fails early with a ``DataError`` that names the file,
column or row and says how to fix it; nothing is silently dropped or coerced.

``dataset`` forms (``DataConfig.dataset``):
- ``mr``: Pang & Lee movie-review snippets from the Rotten Tomatoes corpus cached by
  ``python -m vda.assets fetch-data``; fixed seeded, class-balanced 8768/1000/1000 split (5,384 per class).
- ``hf:<path>[/<config>]``: a Hugging Face dataset (needs the hub); known tasks in ``HF_TASKS``.
- a file (``.csv``, ``.tsv``, ``.jsonl``): split seeded 80/10/10 into train/dev/test.
- a directory holding ``train.*`` and ``dev.*`` (and optionally ``test.*``) files of one format.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from vda.config import DataConfig

SPLITS = ("train", "dev", "test")
# One text cell may hold up to MAX_TEXT_CHARS characters. The longest natural reviews are ~50k words
# (~250k characters); far beyond that a "text" is almost surely a broken file (an unclosed quote or
# a wrong delimiter swallowing many rows). Long texts are kept whole here and truncated to
# data.max_length tokens when encoded (vda.batching counts and logs every truncation).
MAX_TEXT_CHARS = 1_000_000
# Python's csv module refuses fields over 131,072 characters by default, before our own check can
# name the row; CSV_FIELD_LIMIT leaves room for whitespace that normalisation removes.
CSV_FIELD_LIMIT = 2 * MAX_TEXT_CHARS
FILE_SUFFIXES = (".csv", ".tsv", ".jsonl")


class DataError(ValueError):
    """Input data is unusable; the message names where and how to fix it."""


@dataclass(frozen=True)
class Example:
    id: str  # stable within the dataset, e.g. "mr-test-00017"; attack results are keyed by it
    text_a: str
    text_b: str | None  # second sentence of a pair task, else None
    label: int


@dataclass(frozen=True)
class TaskData:
    name: str
    label_names: tuple[str, ...]
    text_columns: tuple[str, ...]
    splits: dict[str, list[Example]]

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split_hash(self, split: str) -> str:
        """Content hash of one split (ids, texts, labels): recorded in manifests and attack results."""
        h = hashlib.sha256()
        for ex in self.splits[split]:
            h.update(json.dumps([ex.id, ex.text_a, ex.text_b, ex.label]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What a manifest records about the data."""
        return {
            "name": self.name,
            "label_names": list(self.label_names),
            "text_columns": list(self.text_columns),
            "split_sizes": {s: len(v) for s, v in self.splits.items()},
            "split_hashes": {s: self.split_hash(s) for s in self.splits},
        }


@dataclass(frozen=True)
class HFTask:
    """How one Hugging Face dataset maps onto train/dev/test and text columns."""

    path: str
    config: str | None
    text_columns: tuple[str, ...]
    label_column: str
    train: str
    dev: str | None  # None: carve dev out of train (seeded)
    test: str  # labelled split used as test (GLUE test labels are hidden, so validation)


HF_TASKS: dict[str, HFTask] = {
    "glue/mrpc": HFTask("glue", "mrpc", ("sentence1", "sentence2"), "label", "train", None, "validation"),
    "glue/qnli": HFTask("glue", "qnli", ("question", "sentence"), "label", "train", None, "validation"),
    "glue/sst2": HFTask("glue", "sst2", ("sentence",), "label", "train", None, "validation"),
    "imdb": HFTask("imdb", None, ("text",), "label", "train", None, "test"),
    "yelp_polarity": HFTask("yelp_polarity", None, ("text",), "label", "train", None, "test"),
    "ag_news": HFTask("ag_news", None, ("text",), "label", "train", None, "test"),
    "rotten_tomatoes": HFTask("rotten_tomatoes", None, ("text",), "label", "train", "validation", "test"),
}


def load_task(cfg: DataConfig) -> TaskData:
    """Load, validate and split the dataset named by ``cfg``, apply the example caps, then append
    ``extra_train_file``'s examples to train (after the cap: ADA adds to the same training subset)."""
    name = cfg.dataset.strip()
    if name == "mr":
        task = _load_mr(cfg)
    elif name.startswith("hf:"):
        task = _load_hf(name[3:], cfg)
    else:
        task = _load_local(Path(name).expanduser(), cfg)
    task = _cap(task, cfg)
    return _with_extra_train(task, Path(cfg.extra_train_file)) if cfg.extra_train_file else task


def _with_extra_train(task: TaskData, path: Path) -> TaskData:
    """Append extra training examples: JSONL rows {"id", "text_a", "text_b", "label"} with label names."""
    if not path.is_file():
        raise DataError(f"data.extra_train_file: {str(path)!r} does not exist; generate it (ADA: "
                        "python -m attack_workers.ada ...) or leave data.extra_train_file empty")
    columns = ("text_a", "text_b") if task.is_pair else ("text_a",)
    records = _read_records(path)
    _check_columns(records, columns, "label", str(path))
    index = {name: i for i, name in enumerate(task.label_names)}
    extra = [_example(r, i, "train", f"{task.name}-extra", columns, "label", index, task.label_names, str(path))
             for i, r in enumerate(records)]
    splits = dict(task.splits, train=task.splits["train"] + extra)
    return TaskData(task.name, task.label_names, task.text_columns, splits)


def _cap(task: TaskData, cfg: DataConfig) -> TaskData:
    caps = {"train": cfg.max_train_examples, "dev": cfg.max_eval_examples, "test": cfg.max_eval_examples}
    splits = {}
    for split, examples in task.splits.items():
        cap = caps[split]
        if cap and len(examples) > cap:
            examples = random.Random(f"{cfg.split_seed}-{split}").sample(examples, cap)
        splits[split] = examples
    return TaskData(task.name, task.label_names, task.text_columns, splits)


# ---------------------------------------------------------------- built-in MR


def _load_mr(cfg: DataConfig) -> TaskData:
    from vda.assets import mr_corpus_path  # local import: assets may be missing until provisioned

    path = mr_corpus_path()
    with bz2.open(path, "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_label: dict[str, list[str]] = {"rotten": [], "fresh": []}
    seen: set[str] = set()
    for row in rows:
        text = " ".join((row.get("text") or "").split())
        if row.get("category") in by_label and text and text not in seen:
            seen.add(text)
            by_label[row["category"]].append(text)
    rng = random.Random(13)  # fixed: the built-in split must not move with the user's seed
    per_class = min(len(v) for v in by_label.values())
    for texts in by_label.values():
        texts.sort()
        rng.shuffle(texts)
        del texts[per_class:]
    eval_per_class = 500  # paper Table 1: MR dev 1000, test 1000
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for label, texts in enumerate(by_label.values()):
        parts = {"test": texts[:eval_per_class], "dev": texts[eval_per_class:2 * eval_per_class],
                 "train": texts[2 * eval_per_class:]}
        for split, chunk in parts.items():
            splits[split].extend(Example("", t, None, label) for t in chunk)
    for split, examples in splits.items():
        examples.sort(key=lambda e: e.text_a)
        rng.shuffle(examples)
        splits[split] = [Example(f"mr-{split}-{i:05d}", e.text_a, None, e.label) for i, e in enumerate(examples)]
    return TaskData("mr", ("negative", "positive"), ("text",), splits)


# ---------------------------------------------------------------- Hugging Face hub


def _load_hf(spec: str, cfg: DataConfig) -> TaskData:
    if spec not in HF_TASKS:
        raise DataError(f"data.dataset: 'hf:{spec}' is not a known Hugging Face task; known: "
                        f"{', '.join('hf:' + k for k in HF_TASKS)}. For another dataset export it to CSV/JSONL "
                        "and pass the file path.")
    task = HF_TASKS[spec]
    if cfg.text_columns != ("text",) and tuple(cfg.text_columns) != task.text_columns:
        raise DataError(f"data.text_columns: {list(cfg.text_columns)} does not match hf:{spec}, whose text "
                        f"columns are {list(task.text_columns)}; leave data.text_columns unset or use those")
    import datasets  # heavy; only this path needs it

    ds = datasets.load_dataset(task.path, task.config)
    features = ds[task.train].features[task.label_column]
    label_names = tuple(getattr(features, "names", None) or cfg.label_names)
    raw = {"train": ds[task.train], "test": ds[task.test]}
    if task.dev:
        raw["dev"] = ds[task.dev]
    records = {split: [dict(r) for r in rows] for split, rows in raw.items()}
    name = spec.replace("/", "-")
    return _from_records(name, records, task.text_columns, task.label_column, label_names, cfg, f"hf:{spec}")


# ---------------------------------------------------------------- local files


def _load_local(path: Path, cfg: DataConfig) -> TaskData:
    if path.is_dir():
        files = {split: _find_split_file(path, split) for split in SPLITS}
        missing = [s for s in ("train", "dev") if files[s] is None]
        if missing:
            raise DataError(f"{path}: directory has no {' or '.join(missing)} file; expected train.csv/.tsv/.jsonl "
                            "and dev.* (test.* optional) of one format")
        records = {split: _read_records(f) for split, f in files.items() if f is not None}
    elif path.is_file():
        records = {"all": _read_records(path)}
    else:
        raise DataError(f"data.dataset: {str(path)!r} is neither a built-in dataset ('mr'), 'hf:<name>', "
                        "nor an existing file or directory")
    return _from_records(path.stem, records, cfg.text_columns, cfg.label_column, cfg.label_names, cfg, str(path))


def _find_split_file(directory: Path, split: str) -> Path | None:
    found = [directory / f"{split}{s}" for s in FILE_SUFFIXES if (directory / f"{split}{s}").is_file()]
    if len(found) > 1:
        raise DataError(f"{directory}: several {split} files ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def _read_records(path: Path) -> list[dict[str, Any]]:
    if path.suffix not in FILE_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_SUFFIXES)}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: byte {raw[exc.start]:#04x} at offset {exc.start} is not UTF-8; "
                        "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    return _read_jsonl(path, text) if path.suffix == ".jsonl" else _read_csv(path, text)


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {i}: invalid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {i}: expected a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return records


def _read_csv(path: Path, text: str) -> list[dict[str, Any]]:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    # Process-wide setting: only ever raised, so other csv readers in the process keep working.
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: {exc} (one text may have up to {MAX_TEXT_CHARS:,} "
                        "characters); check the quoting: an unclosed quote swallows the rest of the file") from None
    for i, row in enumerate(rows, start=1):
        if None in row or None in row.values():
            raise DataError(f"{path}: row {i}: has a different number of fields than the header "
                            f"({len(rows[0]) if rows else 0}); quote texts that contain {delimiter!r}")
    return rows


# ---------------------------------------------------------------- shared validation


def _from_records(name: str, records: dict[str, list[dict[str, Any]]], text_columns: Sequence[str],
                  label_column: str, label_names: Sequence[str], cfg: DataConfig, where: str) -> TaskData:
    """Validate columns, texts and labels of every split, map labels to ids and make the splits."""
    text_columns = tuple(text_columns)
    for split, rows in records.items():
        _check_columns(rows, text_columns, label_column, f"{where} ({split})")
    labels = _label_names(records, label_column, tuple(label_names), where)
    index = {str(lab): i for i, lab in enumerate(labels)}
    examples = {split: [_example(r, i, split, name, text_columns, label_column, index, labels, where)
                        for i, r in enumerate(rows)] for split, rows in records.items()}
    splits = _split(examples, cfg.split_seed, name)
    return TaskData(name, labels, text_columns, splits)


def _check_columns(rows: list[dict[str, Any]], text_columns: tuple[str, ...], label_column: str, where: str) -> None:
    if not rows:
        raise DataError(f"{where}: no rows; the file or split is empty")
    present = set(rows[0])
    missing = [c for c in (*text_columns, label_column) if c not in present]
    if missing:
        hint = ""
        if len(text_columns) == 2 and text_columns[1] in missing and text_columns[0] in present:
            hint = (" This is configured as a sentence-pair task but the file has only one of the two text "
                    "columns; give both columns or set data.text_columns to a single column.")
        raise DataError(f"{where}: missing column(s) {missing}; the file has {sorted(present)}. Set "
                        f"data.text_columns / data.label_column to the right names.{hint}")


def _label_names(records: dict[str, list[dict[str, Any]]], label_column: str, given: tuple[str, ...],
                 where: str) -> tuple[str, ...]:
    if given:
        return given
    split = "train" if "train" in records else "all"
    values = {_cell(r, label_column, f"{where} ({split}) row {i + 1}") for i, r in enumerate(records.get(split, []))}
    if all(v.lstrip("-").isdigit() for v in values):
        ordered = sorted(values, key=int)
        if [int(v) for v in ordered] != list(range(len(ordered))):
            raise DataError(f"{where}: integer labels {ordered} are not 0..{len(ordered) - 1}; "
                            "set data.label_names to list every label in id order")
        return tuple(ordered)
    if len(values) < 2:
        raise DataError(f"{where}: the training data has only the label(s) {sorted(values)}; need at least 2")
    return tuple(sorted(values))


def _example(row: dict[str, Any], i: int, split: str, name: str, text_columns: tuple[str, ...],
             label_column: str, index: dict[str, int], labels: tuple[str, ...], where: str) -> Example:
    row_ref = f"{where} ({split}) row {i + 1}"
    texts = []
    for col in text_columns:
        text = _cell(row, col, row_ref)
        if len(text) > MAX_TEXT_CHARS:
            raise DataError(f"{row_ref}: column {col!r} has {len(text):,} characters (limit {MAX_TEXT_CHARS:,}); "
                            "check the delimiter/quoting, or shorten the text (only the first data.max_length "
                            "tokens are used anyway)")
        texts.append(text)
    raw_label = _cell(row, label_column, row_ref)
    if raw_label in index:
        label = index[raw_label]
    elif raw_label.lstrip("-").isdigit() and 0 <= int(raw_label) < len(labels) and raw_label not in labels:
        label = int(raw_label)  # integer ids against named labels (e.g. HF ClassLabel)
    else:
        raise DataError(f"{row_ref}: label {raw_label!r} is not in the label set {list(labels)}; fix the row or "
                        "set data.label_names to include it")
    return Example(f"{name}-{split}-{i:05d}", texts[0], texts[1] if len(texts) == 2 else None, label)


def _cell(row: dict[str, Any], column: str, row_ref: str) -> str:
    """One cell, whitespace-normalised. Missing or empty is an error: an empty label would otherwise
    become a class of its own (shifting every real label id by one) and JSON null the class 'None'."""
    if column not in row:
        raise DataError(f"{row_ref}: has no {column!r} column; give every row one (or set data.text_columns / "
                        "data.label_column)")
    value = row[column]
    text = "" if value is None else " ".join(str(value).split())
    if not text:
        raise DataError(f"{row_ref}: column {column!r} is empty; fill it in or remove the row")
    return text


def _split(examples: dict[str, list[Example]], seed: int, name: str) -> dict[str, list[Example]]:
    """Fixed splits pass through; a single file (or a missing dev) is split with a seeded shuffle."""
    if "all" in examples:
        pool = list(examples["all"])
        random.Random(seed).shuffle(pool)
        n_eval = max(1, len(pool) // 10)
        parts = {"test": pool[:n_eval], "dev": pool[n_eval:2 * n_eval], "train": pool[2 * n_eval:]}
        return {s: _renumber(parts[s], name, s) for s in SPLITS}
    out = dict(examples)
    if "dev" not in out:
        pool = list(out["train"])
        random.Random(seed).shuffle(pool)
        n_dev = max(1, len(pool) // 10)
        out["dev"], out["train"] = _renumber(pool[:n_dev], name, "dev"), _renumber(pool[n_dev:], name, "train")
    if "test" not in out:
        out["test"] = out["dev"]
    return {s: out[s] for s in SPLITS}


def _renumber(examples: Iterable[Example], name: str, split: str) -> list[Example]:
    return [Example(f"{name}-{split}-{i:05d}", e.text_a, e.text_b, e.label) for i, e in enumerate(examples)]
