"""Sharp mode's candidate table: every training example's MLM candidates, computed once per sweep.

In ``sharp`` mode an example's noise-free scores (its positions' top-K candidate ids and their
log-probabilities) depend only on the frozen MLM, the tokenised input, ``vda.top_k`` and the
numeric setting they were computed under: the MLM reads the same unmasked input every epoch and
only the noise drawn on the scores changes. Every trial of a sweep over the same texts and MLM
would pay for the same MLM passes again, so the table for the whole training split is computed
up front, before the first step, and kept as a CSR-like layout:

    offsets [n_examples + 1] int64      example i owns rows offsets[i]:offsets[i + 1]
    indices [n_positions, K + 1] int32  candidate token ids; the last column is the original token
    scores  [n_positions, K + 1] float32  noise-free log-probabilities (-inf masks a duplicate)

``vda.shared_candidates`` (default) stores it under ``cache_dir()/candidates/<key>/`` as ``.npy``
files plus ``meta.json``; a trial with the same key memory-maps it (the page cache is then shared
by every trial on the node). The key hashes the MLM's weights and config, the split's token ids,
``top_k``, ``chunk_positions``, the device type, the autocast dtype and the format (which fixes
how the split is batched for scoring: batch composition changes the MLM's rounding). Writers
build in a temp directory and rename it into place under an ``fcntl`` lock, so concurrent trials
compute it once; a reader checks sizes, content hashes and the layout against its own split, and
a broken table is reported, removed and rebuilt. With ``shared_candidates=false`` the same
computation fills a table in the run's memory only, so both give the same values bit for bit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from vda.assets import cache_dir, staged
from vda.augment import VirtualAugmenter
from vda.batching import EncodedSplit, batch_indices, collate
from vda.config import VDAConfig
from vda.substitution import ScoredPositions

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SCORE_BATCH_SIZE = 64
"""Examples per MLM pass while building (length-sorted). Part of the format, not of the config:
every table of one key must come from the same batches to hold the same bits."""
ARRAYS = {"offsets": np.int64, "indices": np.int32, "scores": np.float32}
META = "meta.json"
_HASH_BLOCK = 1 << 26  # bytes hashed per update: a memory-mapped table is read in slices, never copied


class CorruptTableError(ValueError):
    """A stored table does not match its meta.json or the split it is used for; the message says how."""


def uses_table(cfg: VDAConfig) -> bool:
    """Whether a run scores from a candidate table: sharp-mode VDA with ``cache_mb > 0``."""
    return cfg.enabled and cfg.mode == "sharp" and cfg.cache_mb > 0


def uses_shared_file(cfg: VDAConfig) -> bool:
    """Whether that table lives in the cache directory, where other runs with the same key find it."""
    return uses_table(cfg) and cfg.shared_candidates


@dataclass(frozen=True)
class Numerics:
    """Where and in which precision the MLM scores: the training step's autocast, and part of the key."""

    device: torch.device
    amp: torch.dtype | None

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def describe(self) -> dict[str, str]:
        return {"device": self.device.type, "amp": str(self.amp or torch.float32).removeprefix("torch.")}


@dataclass(frozen=True)
class SplitLayout:
    """A tokenised split as flat arrays: what the key hashes and what a loaded table is checked against."""

    offsets: np.ndarray  # [n + 1] int64
    input_ids: np.ndarray  # [N] int64, the examples' ids back to back
    token_type_ids: np.ndarray | None  # [N] int64 for tokenizers with segments

    @classmethod
    def of(cls, split: EncodedSplit) -> "SplitLayout":
        lengths = [len(f["input_ids"]) for f in split.features]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def flat(name: str) -> np.ndarray:
            return np.fromiter((t for f in split.features for t in f[name]), dtype=np.int64, count=int(offsets[-1]))

        types = flat("token_type_ids") if split.features and "token_type_ids" in split.features[0] else None
        return cls(offsets, flat("input_ids"), types)

    @property
    def n_examples(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_positions(self) -> int:
        return int(self.offsets[-1])

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for name, array in (("offsets", self.offsets), ("input_ids", self.input_ids),
                            ("token_type_ids", self.token_type_ids)):
            h.update(name.encode())
            if array is not None:
                h.update(array.tobytes())
        return h.hexdigest()


def mlm_digest(mlm: Any) -> str:
    """Hash of the MLM's class, config and every state_dict tensor's bytes (sorted by name); ~0.2 s for MiniLM."""
    h = hashlib.blake2b(digest_size=16)
    config = {k: v for k, v in mlm.config.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
    h.update(f"{type(mlm).__name__}\n{json.dumps(config, sort_keys=True, default=str)}".encode())
    for name, tensor in sorted(mlm.state_dict().items()):
        h.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


@dataclass(frozen=True)
class TableKey:
    digest: str  # the directory name under cache_dir()/candidates
    inputs: dict[str, Any]  # what was hashed, readable: recorded in meta.json


def table_key(augmenter: VirtualAugmenter, layout: SplitLayout, numerics: Numerics) -> TableKey:
    """The key of the table ``augmenter`` would compute for ``layout`` under ``numerics``."""
    inputs = {"format": FORMAT_VERSION, "mlm": mlm_digest(augmenter.mlm), "split": layout.digest(),
              "top_k": augmenter.cfg.top_k, "chunk_positions": augmenter.cfg.chunk_positions,
              "score_batch_size": SCORE_BATCH_SIZE, **numerics.describe(),
              "n_examples": layout.n_examples, "n_positions": layout.n_positions}
    digest = hashlib.blake2b(json.dumps(inputs, sort_keys=True).encode(), digest_size=16).hexdigest()
    return TableKey(digest, inputs)


@dataclass(frozen=True)
class CandidateTable:
    """Every training example's candidates; examples are looked up by their index in the split
    (a ``vda.augment.ScoreTable``)."""

    offsets: np.ndarray
    indices: np.ndarray
    scores: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self.scores.nbytes

    def rows(self, keys: Sequence[int], device: torch.device) -> ScoredPositions:
        """The examples' positions back to back (row-major in the batch), as the MLM path yields them."""
        spans = [slice(int(self.offsets[k]), int(self.offsets[k + 1])) for k in keys]
        indices = np.concatenate([self.indices[s] for s in spans])
        scores = np.concatenate([self.scores[s] for s in spans])
        return ScoredPositions(torch.from_numpy(indices).to(device, torch.long), torch.from_numpy(scores).to(device))


@dataclass(frozen=True)
class TableReport:
    """Which table a run used and how it got it: recorded in ``results.json`` for benchmarks."""

    key: str
    source: str  # "loaded" (an existing file), "computed" (made and stored for others), "memory" (this run only)
    path: str | None  # the shared directory; None for "memory"
    examples: int
    positions: int
    megabytes: float
    seconds: float


def candidate_table(augmenter: VirtualAugmenter, split: EncodedSplit, tokenizer: Any, numerics: Numerics,
                    progress: bool = True) -> tuple[CandidateTable | None, TableReport | None]:
    """The run's table (loaded, or computed and stored, or computed in memory) and how it was got.

    (None, None) when the run does not use one: not sharp-mode VDA, ``cache_mb`` 0, or a table larger
    than ``cache_mb`` (warned: the MLM then scores every batch, as a run without a table does).
    """
    cfg = augmenter.cfg
    if not uses_table(cfg):
        return None, None
    layout = SplitLayout.of(split)
    width = min(cfg.top_k, augmenter.embedding.shape[0]) + 1
    size = layout.n_positions * width * (np.dtype(np.int32).itemsize + np.dtype(np.float32).itemsize)
    if size > cfg.cache_mb << 20:
        log.warning("the vda candidate table of the %d training examples needs %.0f MiB, more than vda.cache_mb=%d; "
                    "the MLM scores every batch instead (raise vda.cache_mb to use the table)",
                    layout.n_examples, size / 2**20, cfg.cache_mb)
        return None, None
    started = time.time()
    key = table_key(augmenter, layout, numerics)
    builder = _Builder(augmenter, split, tokenizer, numerics, layout, width, progress)
    path: Path | None = None
    if cfg.shared_candidates:
        try:
            table, path, source = _shared_table(builder, key)
        except OSError as exc:  # an unwritable or full cache directory must not stop training
            log.warning("cannot use a shared vda candidate table (%s); this run keeps its own in memory", exc)
            table, source = builder.build_in_memory(), "memory"
    else:
        table, source = builder.build_in_memory(), "memory"
    report = TableReport(key.digest, source, str(path) if path else None, layout.n_examples, layout.n_positions,
                         round(table.nbytes / 2**20, 3), round(time.time() - started, 3))
    log.info("vda candidates: %s table %s (%d examples, %d positions, %.1f MiB) in %.1f s", source, key.digest,
             report.examples, report.positions, report.megabytes, report.seconds)
    return table, report


@dataclass
class _Builder:
    """Scores a split with the augmenter's own MLM code into preallocated arrays (a file's or memory's)."""

    augmenter: VirtualAugmenter
    split: EncodedSplit
    tokenizer: Any
    numerics: Numerics
    layout: SplitLayout
    width: int
    progress: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.layout.n_positions, self.width

    def build_in_memory(self) -> CandidateTable:
        indices, scores = np.empty(self.shape, np.int32), np.empty(self.shape, np.float32)
        self.fill(indices, scores)
        return CandidateTable(self.layout.offsets, indices, scores)

    def fill(self, indices: np.ndarray, scores: np.ndarray) -> None:
        """Score deterministic length-sorted batches under the training step's autocast; write each example's rows."""
        offsets = self.layout.offsets
        batches = list(batch_indices(len(self.split), SCORE_BATCH_SIZE, shuffle=False, lengths=np.diff(offsets)))
        for rows in tqdm(batches, desc="vda candidates", disable=not self.progress, leave=False):
            batch = collate(self.tokenizer, self.split, rows, self.numerics.device)
            with self.numerics.autocast():
                scored = self.augmenter.score(batch["input_ids"], batch["attention_mask"],
                                              batch.get("token_type_ids"))
            ids, values = scored.indices.to("cpu", torch.int32).numpy(), scored.scores.cpu().numpy()
            start = 0
            for row in rows:
                stop = start + int(offsets[row + 1] - offsets[row])
                indices[offsets[row]:offsets[row + 1]] = ids[start:stop]
                scores[offsets[row]:offsets[row + 1]] = values[start:stop]
                start = stop

    def write(self, directory: Path, key: TableKey) -> None:
        """Fill memory-mapped .npy files in ``directory`` (no second copy in memory) and describe them in meta.json."""
        np.save(directory / "offsets.npy", self.layout.offsets)
        indices = np.lib.format.open_memmap(directory / "indices.npy", "w+", np.int32, self.shape)
        scores = np.lib.format.open_memmap(directory / "scores.npy", "w+", np.float32, self.shape)
        self.fill(indices, scores)
        indices.flush()
        scores.flush()
        arrays = {"offsets": self.layout.offsets, "indices": indices, "scores": scores}
        meta = {"format": FORMAT_VERSION, "key": key.digest, "inputs": key.inputs, "created": time.time(),
                "arrays": {name: {"file": f"{name}.npy", "dtype": str(array.dtype), "shape": list(array.shape),
                                  "nbytes": int(array.nbytes), "file_bytes": os.path.getsize(directory / f"{name}.npy"),
                                  "blake2b": _array_digest(array)}
                           for name, array in arrays.items()}}
        (directory / META).write_text(json.dumps(meta, indent=2))


def _root() -> Path:
    return cache_dir() / "candidates"


def _shared_table(builder: _Builder, key: TableKey) -> tuple[CandidateTable, Path, str]:
    """Load the key's file, or compute and publish it; one process per machine computes, the others wait."""
    root = _root()
    root.mkdir(parents=True, exist_ok=True)
    final, lock = root / key.digest, root / f"{key.digest}.lock"
    with file_lock(lock, exclusive=False):
        with contextlib.suppress(CorruptTableError):  # repaired below, under the exclusive lock
            if final.is_dir():
                return load_table(final, key, builder.layout, builder.width), final, "loaded"
    with file_lock(lock, exclusive=True):
        if final.is_dir():
            try:
                return load_table(final, key, builder.layout, builder.width), final, "loaded"
            except CorruptTableError as exc:
                log.warning("%s: %s; removing it and computing the vda candidate table again", final, exc)
                shutil.rmtree(final)
        with staged(final, directory=True) as tmp:
            builder.write(tmp, key)
        return load_table(final, key, builder.layout, builder.width), final, "computed"


@contextlib.contextmanager
def file_lock(path: Path, exclusive: bool) -> Iterator[None]:
    """Hold an flock on ``path``: shared while reading, exclusive while checking, repairing or writing."""
    with open(path, "a+b") as handle:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish the vda candidate table (%s)", path)
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_table(directory: Path, key: TableKey, layout: SplitLayout, width: int) -> CandidateTable:
    """Memory-map a stored table after checking it; CorruptTableError says what is wrong."""
    try:
        meta = json.loads((directory / META).read_text())
        described = meta["arrays"]
        if meta["format"] != FORMAT_VERSION or meta["key"] != key.digest:
            raise CorruptTableError(f"{META} is for format {meta['format']}, key {meta['key']}, not "
                                    f"format {FORMAT_VERSION}, key {key.digest}")
        arrays = {name: _open_array(directory, name, described[name], dtype) for name, dtype in ARRAYS.items()}
    except CorruptTableError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise CorruptTableError(f"unreadable ({type(exc).__name__}: {exc})") from None
    table = CandidateTable(**arrays)
    _check_layout(table, layout, width)
    return table


def _open_array(directory: Path, name: str, meta: dict[str, Any], dtype: type) -> np.ndarray:
    path = directory / meta["file"]
    size = path.stat().st_size
    if size != meta["file_bytes"]:
        raise CorruptTableError(f"{path.name} has {size} bytes, {META} says {meta['file_bytes']} (truncated?)")
    array = np.load(path, mmap_mode="r")
    if array.dtype != dtype or list(array.shape) != meta["shape"]:
        raise CorruptTableError(f"{path.name} holds {array.dtype} {list(array.shape)}, {META} says "
                                f"{np.dtype(dtype)} {meta['shape']}")
    if _array_digest(array) != meta["blake2b"]:
        raise CorruptTableError(f"{path.name}: content hash differs from {META} (corrupt)")
    return array


def _check_layout(table: CandidateTable, layout: SplitLayout, width: int) -> None:
    """The table must cover exactly this split: same example lengths, its tokens as the original-token column."""
    if not np.array_equal(table.offsets, layout.offsets):
        raise CorruptTableError("its example offsets differ from this training split's token counts")
    if table.indices.shape != (layout.n_positions, width):
        raise CorruptTableError(f"indices are {list(table.indices.shape)}, expected [{layout.n_positions}, {width}]")
    if not np.array_equal(table.indices[:, -1], layout.input_ids):
        raise CorruptTableError("its original-token column differs from this training split's token ids")


def _array_digest(array: np.ndarray) -> str:
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    h = hashlib.blake2b(digest_size=16)
    for start in range(0, flat.size, _HASH_BLOCK):
        h.update(flat[start:start + _HASH_BLOCK])
    return h.hexdigest()
