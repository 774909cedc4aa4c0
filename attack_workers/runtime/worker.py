"""The attack worker: holds the models, attacks one shard at a time, returns one row per example.

A plain class, so it runs in-process (tests, benchmarks) or as a Ray actor (``attack_workers.runtime.pool``
wraps it with ``ray.remote``). The masked LM, sentence encoder and word lexicon (with the validity
audit, ``attack_workers.lexicon.audit``) are loaded once per worker; a
checkpoint's classifier and its attacks are loaded once and kept while shards of that checkpoint
keep coming (the pool prefers to send them to the worker that already holds it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from attack_workers.attack.offline import import_textattack
from attack_workers.runtime.shards import CheckpointTarget, Shard, ShardResult
from vda.data import Example


class LexiconMismatchError(RuntimeError):
    """A worker's word lexicon is not the one the shard's attack key was planned with."""


@dataclass(frozen=True)
class WorkerConfig:
    mlm: str = "default"  # vda.mlm.load_mlm spec: "default" (packaged) or a local BertForMaskedLM directory
    encoder: str = "default"  # sentence-transformers directory for the similarity constraint
    device: str = "auto"  # auto: cuda when this worker sees a GPU, else cpu
    num_threads: int = 1  # torch CPU threads (= the CPUs Ray gives the actor)
    model_batch_size: int = 64  # victim queries per forward pass; does not change results


class AttackWorker:
    """Attack shards with an attack recipe under a protocol; see ``attack_shard``."""

    def __init__(self, config: WorkerConfig) -> None:
        import_textattack()  # first: Ray actors are fresh processes
        import torch

        # textattack warns at every Attack it builds that it cannot vouch for a model class it does not
        # know; our wrapper is validated by the tests instead.
        logging.getLogger("textattack.shared.utils.install").setLevel(logging.ERROR)

        from attack_workers.lexicon.audit import Auditor
        from attack_workers.lexicon.vectors import LexiconSpec, load_lexicon
        from attack_workers.attack.protocols import Backbones
        from attack_workers.lexicon.relations import is_english_word
        from attack_workers.attack.sentence_encoder import load_sentence_model
        from attack_workers.lexicon.tagger import Tagger
        from attack_workers.lexicon.words import whole_word_tokens
        from vda.mlm import load_mlm

        torch.set_num_threads(max(1, config.num_threads))
        self.config = config
        if config.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.device = config.device
        mlm, mlm_tokenizer = load_mlm(config.mlm, self.device)
        default_lexicon = LexiconSpec(encoder=config.encoder, mlm=config.mlm)
        lexicon = load_lexicon(default_lexicon)
        self._lexicons = {default_lexicon: lexicon}  # by spec: one per dataset the shards attack
        tagger = Tagger()
        self.backbones = Backbones(mlm, mlm_tokenizer, load_sentence_model(config.encoder, self.device), lexicon, tagger)
        mlm_words = {t.lower() for t in whole_word_tokens(mlm_tokenizer)}  # words by construction
        self._is_known_word = lambda word: word.lower() in mlm_words or is_english_word(word)
        self.auditor = Auditor(lexicon.cosine, self._is_known_word, tagger)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{self.device}"
        self.node_id = ray_node_id()  # the host name alone does not tell two Ray nodes on one machine apart
        self._checkpoint_hash: str | None = None
        self._wrapper: Any = None
        self._attacks: dict[tuple[Any, ...], Any] = {}

    def describe(self) -> dict[str, Any]:
        """Where this worker runs; the pool calls it to know the worker started."""
        return {"worker": self.name, "node_id": self.node_id, "device": self.device,
                "checkpoint": self._checkpoint_hash}

    def attack_shard(self, shard: Shard) -> ShardResult:
        """Attack every example of ``shard``; exceptions propagate (the pool records the shard as failed)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        if shard.chain:
            rows = self._attack_chain(shard)
        else:
            attack = self._attack_for(shard.target)
            rows = [self._attack_example(attack, shard, example) for example in shard.examples]
        return ShardResult(shard.shard_id, rows, self.name, time.perf_counter() - started,
                           time.process_time() - cpu_started)

    # ------------------------------------------------------------ loading

    def _attack_for(self, target: CheckpointTarget) -> Any:
        self._check_lexicon(target)
        if target.checkpoint_hash != self._checkpoint_hash:
            self._load_checkpoint(target)
        key = (target.protocol, target.attack, target.params, target.text_columns)
        if key not in self._attacks:
            from attack_workers.attack.protocols import get_protocol

            build = get_protocol(target.protocol).build
            self._attacks[key] = build(self._wrapper, self.backbones, target.params, target.text_columns,
                                       attack=target.attack)
        return self._attacks[key]

    def _attack_chain(self, shard: Shard) -> list[dict[str, Any]]:
        """``skip_broken``: the shard's attacks in order on each example; once one breaks it, the later
        ones record it as spared (not attacked) instead of attacking it."""
        rows = []
        for example in shard.examples:
            broken: dict[str, Any] | None = None
            for target in (shard.target, *shard.chain):
                if broken is not None:
                    rows.append(spared_row(broken, target, self.name))
                    continue
                row = self._attack_example(self._attack_for(target), dataclasses.replace(shard, target=target),
                                           example)
                rows.append(row)
                broken = row if row["status"] == "succeeded" else None
        return rows

    def _check_lexicon(self, target: CheckpointTarget) -> None:
        """Use the word lexicon the shard was planned with (its dataset's); refuse other vectors.

        A node whose cache lacks it builds its own (minutes, once): the build is bit-reproducible
        on one kind of machine, so its content hash matches the planner's and the shard is
        attacked. Another CPU or torch version may round differently; then the rows would be
        stored under a key that names other vectors, so the shard is refused.
        """
        from attack_workers.lexicon.audit import Auditor
        from attack_workers.lexicon.vectors import LexiconSpec, load_lexicon

        spec = target.lexicon or LexiconSpec(encoder=self.config.encoder, mlm=self.config.mlm)
        if spec not in self._lexicons:
            self._lexicons[spec] = load_lexicon(spec)  # built here when this node's cache lacks it
        lexicon = self._lexicons[spec]
        if lexicon.content_hash != target.lexicon_hash:
            raise LexiconMismatchError(
                f"worker {self.name} holds word lexicon {lexicon.content_hash} ({lexicon.directory}) but the "
                f"evaluation was planned with {target.lexicon_hash}: this node's build (or copy) of the lexicon "
                "has other vectors, e.g. another CPU or torch version rounded differently. Give every node the "
                "planner's lexicon: put VDA_CACHE_DIR on shared storage, or copy the planner's "
                f"<VDA_CACHE_DIR>/word-vectors/{lexicon.directory.name} directory to the node and restart its workers")
        if lexicon is not self.backbones.lexicon:  # another dataset's lexicon: its filter and the audit's cosines
            self.backbones = dataclasses.replace(self.backbones, lexicon=lexicon)
            self.auditor = Auditor(lexicon.cosine, self._is_known_word, self.backbones.tagger)
            self._attacks = {}

    def _load_checkpoint(self, target: CheckpointTarget) -> None:
        """Replace the held classifier (one at a time keeps worker memory flat over long sweeps)."""
        from attack_workers.attack.model_wrapper import DynamicPaddingModelWrapper
        from vda.checkpoint import CheckpointError, checkpoint_hash, load_checkpoint

        self._wrapper, self._attacks, self._checkpoint_hash = None, {}, None
        model, tokenizer, _ = load_checkpoint(target.path, self.device)
        found = checkpoint_hash(target.path)
        if found != target.checkpoint_hash:
            raise CheckpointError(f"{target.path}: content changed since the evaluation was planned (hash "
                                  f"{found} != {target.checkpoint_hash}); re-run the evaluation")
        self._wrapper = DynamicPaddingModelWrapper(model, tokenizer, target.max_length,
                                                   batch_size=self.config.model_batch_size)
        self._checkpoint_hash = target.checkpoint_hash

    # ------------------------------------------------------------ one example

    def _attack_example(self, attack: Any, shard: Shard, example: Example) -> dict[str, Any]:
        target = shard.target
        texts = [example.text_a] if example.text_b is None else [example.text_a, example.text_b]
        if len(texts) != len(target.text_columns):
            raise ValueError(f"example {example.id} has {len(texts)} text(s) but the task's text columns are "
                             f"{list(target.text_columns)}")
        started = time.perf_counter()
        result = attack.attack(OrderedDict(zip(target.text_columns, texts)), example.label)
        seconds = time.perf_counter() - started
        return result_row(result, target, example, shard.shard_id, self.name, seconds, self.auditor, self.node_id)


def ray_node_id() -> str:
    """The id of the Ray node this process runs on; '' outside Ray (a worker used in-process)."""
    import sys

    ray = sys.modules.get("ray")  # not imported here when the worker runs without Ray
    return ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else ""


def result_row(result: Any, target: CheckpointTarget, example: Example, shard_id: str, worker: str,
               seconds: float, auditor: Any, node_id: str = "") -> dict[str, Any]:
    """One store row (``store.EXAMPLE_SCHEMA``) from a TextAttack ``AttackResult``, audited by ``auditor``."""
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    statuses = {SuccessfulAttackResult: "succeeded", FailedAttackResult: "failed", SkippedAttackResult: "skipped"}
    if type(result) not in statuses:
        raise TypeError(f"unexpected attack result {type(result).__name__}; expected one of "
                        f"{[c.__name__ for c in statuses]}")
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    inputs = perturbed.tokenizer_input  # str, or a tuple for sentence pairs
    perturbed_texts = list(inputs) if isinstance(inputs, tuple) else [inputs]
    changed = original.all_words_diff(perturbed)
    return {
        "checkpoint_hash": target.checkpoint_hash,
        "run_id": target.run_id,
        "attack_key": target.attack_key,
        "protocol": target.protocol,
        "attack": target.attack,
        "union_key": target.union_key,
        "attack_params": json.dumps(target.params.to_dict(), sort_keys=True),
        "dataset": target.dataset,
        "split": target.split,
        "example_id": example.id,
        "label": int(example.label),
        "clean_pred": int(result.original_result.raw_output.argmax()),
        "adv_pred": int(result.perturbed_result.raw_output.argmax()),
        "status": statuses[type(result)],
        "num_queries": int(result.num_queries),
        "num_words": len(original.words),
        "num_whitespace_words": sum(len(t.split()) for t in (example.text_a, example.text_b) if t is not None),
        "words_changed": len(changed),
        "original_text": example.text_a,
        "original_text_b": example.text_b,
        "perturbed_text": perturbed_texts[0],
        "perturbed_text_b": perturbed_texts[1] if len(perturbed_texts) == 2 else None,
        "seconds": seconds,
        "shard_id": shard_id,
        "worker": worker,
        "node_id": node_id,
        "finished_at": time.time(),
        **auditor.audit(original.words, perturbed.words, changed),
    }


def spared_row(broken: dict[str, Any], target: CheckpointTarget, worker: str) -> dict[str, Any]:
    """The row of ``target``'s attack for an example an earlier attack of its union broke (``broken``, its row):
    status ``spared``, not attacked, no substitution (``skip_broken``; per-attack metrics leave it out)."""
    from attack_workers.lexicon.audit import AUDIT_COLUMNS

    clean = {column: False for column in AUDIT_COLUMNS if column.startswith("audit_")}
    return {**broken, **clean, "attack_key": target.attack_key, "attack": target.attack,
            "union_key": target.union_key, "status": "spared", "adv_pred": broken["clean_pred"], "num_queries": 0,
            "words_changed": 0, "perturbed_text": broken["original_text"], "perturbed_text_b": broken["original_text_b"],
            "seconds": 0.0, "worker": worker, "finished_at": time.time(), "substitutions": "[]",
            "audit_min_cos": float("nan"), "audit_unknown_pairs": 0}
