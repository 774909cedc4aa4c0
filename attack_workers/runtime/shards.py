"""Units of work: a ``Shard`` is one checkpoint, one attack configuration and a slice of examples.

Sharding by (checkpoint, slice) lets one checkpoint's 1000 examples spread over many workers and
many checkpoints run at once; a shard is also the unit that is retried, written and resumed.
Shards carry the example texts, so workers never reload the dataset.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attack_workers.attack.protocols import AttackParams
from attack_workers.results.store import digest
from vda.data import Example


@dataclass(frozen=True)
class CheckpointTarget:
    """A validated checkpoint and the attack configuration to run on it."""

    path: str
    checkpoint_hash: str
    run_id: str
    protocol: str
    params: AttackParams
    attack_key: str
    dataset: str
    split: str
    text_columns: tuple[str, ...]
    max_length: int  # classifier truncation, from the checkpoint's training config
    lexicon_hash: str  # the word lexicon the attack key names; a worker holding another one refuses the shard
    attack: str = "bert-attack"  # the recipe (attack_workers.attack.recipes.ATTACKS); named in attack_key
    union_key: str = ""  # the attack key without the recipe: the attacks of one evaluation share it
    # the word lexicon's LexiconSpec (attack_workers.lexicon.vectors.spec_for_task: the dataset's words);
    # a worker whose cache lacks it builds it. None: the default lexicon
    lexicon: Any = None


@dataclass(frozen=True)
class Shard:
    target: CheckpointTarget
    examples: tuple[Example, ...]
    shard_id: str = field(default="")
    # skip_broken: the union's later attacks, run after ``target`` on each example in this order; an
    # example one of them broke is recorded as spared by the rest (rows of every target come back)
    chain: tuple[CheckpointTarget, ...] = ()

    def __post_init__(self) -> None:
        if not self.shard_id:
            keys = [t.attack_key for t in (self.target, *self.chain)]
            ids = [self.target.checkpoint_hash, *keys, *sorted(e.id for e in self.examples)]
            object.__setattr__(self, "shard_id", digest(ids))

    @property
    def example_ids(self) -> list[str]:
        return [e.id for e in self.examples]


@dataclass
class ShardResult:
    """What a worker returns for a shard: one store row per example."""

    shard_id: str
    rows: list[dict[str, Any]]
    worker: str
    seconds: float  # wall time on the worker
    cpu_seconds: float  # CPU time of the worker process (all its threads) for this shard


def select_examples(examples: Sequence[Example], num_examples: int, seed: int) -> list[Example]:
    """A seeded random sample of ``num_examples`` (all of them if fewer).

    The sample is a prefix of one seeded permutation, so a larger ``num_examples`` with the same
    seed contains the smaller sample: growing an evaluation from 100 to 1000 examples reuses the
    100 rows already stored.
    """
    order = list(examples)
    random.Random(seed).shuffle(order)
    return order[:num_examples]


def plan_shards(target: CheckpointTarget, examples: Sequence[Example], shard_size: int,
                chain: tuple[CheckpointTarget, ...] = ()) -> list[Shard]:
    """Consecutive slices of ``examples``, ``shard_size`` each (the last may be smaller); ``chain``: see ``Shard``."""
    if shard_size < 1:
        raise ValueError(f"shard_size={shard_size}: must be >= 1")
    return [Shard(target, tuple(examples[i:i + shard_size]), chain=chain)
            for i in range(0, len(examples), shard_size)]
