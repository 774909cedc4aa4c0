"""The attack worker: holds the models, attacks one shard at a time, returns one row per example.

A plain class, so it runs in-process (tests, benchmarks) or as a Ray actor (``attack_workers.runtime.pool``
wraps it with ``ray.remote``). The masked LM, sentence encoder and word lexicon (with the validity
audit, ``attack_workers.lexicon.audit``) are loaded once per worker; a
checkpoint's classifier and its attacks are loaded once and kept while shards of that checkpoint
keep coming (the pool prefers to send them to the worker that already holds it).
"""

from __future__ import annotations

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
    """Attack shards with BERT-Attack under a protocol; see ``attack_shard``."""

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
        from vda.mlm import load_mlm

        torch.set_num_threads(max(1, config.num_threads))
        self.config = config
        if config.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.device = config.device
        mlm, mlm_tokenizer = load_mlm(config.mlm, self.device)
        lexicon = load_lexicon(LexiconSpec(encoder=config.encoder, mlm=config.mlm))
        tagger = Tagger()
        self.backbones = Backbones(mlm, mlm_tokenizer, load_sentence_model(config.encoder, self.device), lexicon, tagger)
        mlm_words = {t for t in mlm_tokenizer.get_vocab() if t.isalpha()}  # whole-word tokens: words by construction
        self.auditor = Auditor(lexicon.cosine, lambda word: word.lower() in mlm_words or is_english_word(word), tagger)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{self.device}"
        self._checkpoint_hash: str | None = None
        self._wrapper: Any = None
        self._attacks: dict[tuple[Any, ...], Any] = {}

    def describe(self) -> dict[str, Any]:
        """Where this worker runs; the pool calls it to know the worker started."""
        return {"worker": self.name, "device": self.device, "checkpoint": self._checkpoint_hash}

    def attack_shard(self, shard: Shard) -> ShardResult:
        """Attack every example of ``shard``; exceptions propagate (the pool records the shard as failed)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        attack = self._attack_for(shard.target)
        rows = [self._attack_example(attack, shard, example) for example in shard.examples]
        return ShardResult(shard.shard_id, rows, self.name, time.perf_counter() - started,
                           time.process_time() - cpu_started)

    # ------------------------------------------------------------ loading

    def _attack_for(self, target: CheckpointTarget) -> Any:
        self._check_lexicon(target)
        if target.checkpoint_hash != self._checkpoint_hash:
            self._load_checkpoint(target)
        key = (target.protocol, target.params, target.text_columns)
        if key not in self._attacks:
            from attack_workers.attack.protocols import get_protocol

            build = get_protocol(target.protocol).build
            self._attacks[key] = build(self._wrapper, self.backbones, target.params, target.text_columns)
        return self._attacks[key]

    def _check_lexicon(self, target: CheckpointTarget) -> None:
        """Refuse a shard planned with other word vectors: its rows would be stored under the wrong key.

        The lexicon build is seeded but not bit-reproducible across machines (threaded reductions),
        so a cluster node that built its own copy can hold other vectors than the planner's.
        """
        lexicon = self.backbones.lexicon
        if lexicon.content_hash != target.lexicon_hash:
            raise LexiconMismatchError(
                f"worker {self.name} holds word lexicon {lexicon.content_hash} ({lexicon.directory}) but the "
                f"evaluation was planned with {target.lexicon_hash}: the lexicon build is not bit-reproducible "
                "across machines. Give every node the planner's lexicon: put VDA_CACHE_DIR on shared storage, "
                "or copy the planner's <VDA_CACHE_DIR>/lexicon directory to the node and restart its workers")

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
        return result_row(result, target, example, shard.shard_id, self.name, seconds, self.auditor)


def result_row(result: Any, target: CheckpointTarget, example: Example, shard_id: str, worker: str,
               seconds: float, auditor: Any) -> dict[str, Any]:
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
        "finished_at": time.time(),
        **auditor.audit(original.words, perturbed.words, changed),
    }
