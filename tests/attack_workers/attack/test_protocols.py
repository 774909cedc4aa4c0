"""The protocol registry, attack parameters, and sentence pairs under both protocols."""

from __future__ import annotations

from collections import OrderedDict

import pandas as pd
import pytest

from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation
from attack_workers.attack.protocols import PROTOCOLS, AttackParams, UnknownProtocolError, attack_key, get_protocol
from attack_workers.results.metrics import PROTOCOL_METRICS
from attack_workers.results.store import ResultStore
from attack_workers.runtime.worker import WorkerConfig


def test_unknown_protocol_names_close_match_and_all_known():
    with pytest.raises(UnknownProtocolError) as err:
        get_protocol("vda_paper")
    message = str(err.value)
    assert "'vda_paper' is unknown" in message and "did you mean 'vda-paper'?" in message
    assert "known: strict, textattack, vda-paper" in message
    assert set(PROTOCOLS) == {"strict", "textattack", "vda-paper"}
    assert set(PROTOCOL_METRICS) == set(PROTOCOLS)  # the store counts every protocol's rows by its metrics


def test_attack_params_are_validated_and_keyed():
    assert AttackParams().max_candidates == 48  # the paper's K, not textattack 0.3.11's 8
    with pytest.raises(ValueError, match="max_candidates=0"):
        AttackParams(max_candidates=0).validate()
    with pytest.raises(ValueError, match="max_perturbed"):
        AttackParams(max_perturbed=1.5).validate()
    with pytest.raises(ValueError, match="word_similarity_threshold=0"):
        AttackParams(word_similarity_threshold=0).validate()
    identity = {"mlm": "m", "encoder": "e", "dataset": "mr", "split": "dev", "split_hash": "h"}
    base = attack_key("vda-paper", AttackParams(), identity)
    assert base == attack_key("vda-paper", AttackParams(), dict(identity))
    assert base != attack_key("vda-paper", AttackParams(max_candidates=8), identity)
    assert base != attack_key("textattack", AttackParams(), identity)
    assert base != attack_key("vda-paper", AttackParams(), {**identity, "split_hash": "other"})
    assert base != attack_key("vda-paper", AttackParams(word_similarity_threshold=0.6), identity)


def test_each_protocol_has_its_own_meaning_check(worker, review_checkpoint, tmp_path):
    """vda-paper: the word-level counter-fitted filter, no sentence encoder; textattack: the reverse."""
    from textattack.constraints.semantics import WordEmbeddingDistance

    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder

    kinds = {}
    for protocol in PROTOCOLS:
        config = EvalConfig(store=str(tmp_path / protocol), protocol=protocol, shard_size=100)
        (shard,) = plan_evaluation([str(review_checkpoint)], config, WorkerConfig(), ResultStore(config.store)).shards
        attack = worker._attack_for(shard.target)
        kinds[protocol] = {type(c) for c in attack.constraints}
        if protocol == "vda-paper":
            (word_filter,) = [c for c in attack.constraints if isinstance(c, WordEmbeddingDistance)]
            assert word_filter.min_cos_sim == AttackParams().word_similarity_threshold
            assert word_filter.include_unknown_words  # the script's semantics: a pair without vectors passes
    assert WordEmbeddingDistance in kinds["vda-paper"] and LocalSentenceEncoder not in kinds["vda-paper"]
    assert LocalSentenceEncoder in kinds["textattack"] and WordEmbeddingDistance not in kinds["textattack"]


def test_default_example_counts_follow_the_paper():
    protocol = get_protocol("vda-paper")
    assert protocol.default_num_examples("mr") == 1000
    assert protocol.default_num_examples("imdb") == 300
    assert protocol.default_num_examples("yelp_polarity") == 300


def attack_pairs(worker, checkpoint, tmp_path, protocol) -> pd.DataFrame:
    config = EvalConfig(store=str(tmp_path / protocol), protocol=protocol, params=AttackParams(max_candidates=8),
                        shard_size=100)
    (shard,) = plan_evaluation([str(checkpoint)], config, WorkerConfig(), ResultStore(config.store)).shards
    assert shard.target.text_columns == ("sentence1", "sentence2")
    return pd.DataFrame(worker.attack_shard(shard).rows)


def test_vda_paper_attacks_only_the_second_sentence(worker, pair_checkpoint, tmp_path):
    rows = attack_pairs(worker, pair_checkpoint, tmp_path, "vda-paper")
    assert len(rows) == 4 and rows["original_text_b"].notna().all()
    assert (rows["perturbed_text"] == rows["original_text"]).all()
    assert (rows["perturbed_text_b"] != rows["original_text_b"]).any()
    assert (rows["num_whitespace_words"] == [len(a.split()) + len(b.split())
                                             for a, b in zip(rows["original_text"], rows["original_text_b"])]).all()


def test_textattack_protocol_runs_on_pairs(worker, pair_checkpoint, tmp_path):
    rows = attack_pairs(worker, pair_checkpoint, tmp_path, "textattack")
    assert len(rows) == 4 and set(rows["status"]) <= {"succeeded", "failed", "skipped"}
    changed = (rows["perturbed_text"] != rows["original_text"]) | (rows["perturbed_text_b"] != rows["original_text_b"])
    assert changed.any()


def test_column_constraint_refuses_mismatched_columns():
    from textattack.shared import AttackedText

    from attack_workers.attack.constraints import StrictInputColumnModification

    constraint = StrictInputColumnModification(["question", "sentence"], {"question"})
    matching = AttackedText(OrderedDict(question="who won", sentence="the home team won"))
    assert constraint._get_modifiable_indices(matching) == {2, 3, 4, 5}
    with pytest.raises(ValueError, match="do not match"):
        constraint._get_modifiable_indices(AttackedText(OrderedDict(premise="who won", hypothesis="the team won")))
