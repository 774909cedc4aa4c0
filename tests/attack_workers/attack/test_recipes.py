"""The attack recipes (bert-attack, textfooler, pwws): registry, parts, keys, and attacks on a fixture checkpoint."""

from __future__ import annotations

import pandas as pd
import pytest

from attack_workers.attack.protocols import AttackParams, attack_key, union_key
from attack_workers.attack.recipes import ATTACKS, UnknownAttackError, get_attack, parse_attacks
from attack_workers.results.keys import ATTACK_ORDER, UNION
from attack_workers.results.store import ResultStore
from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation
from attack_workers.runtime.worker import WorkerConfig

from ..conftest import LOOSE_WORD_THRESHOLD

ALL = ("bert-attack", "textfooler", "pwws")


def test_registry_and_attack_lists_are_validated():
    assert set(ATTACKS) == set(ALL)
    # the store sorts attacks and picks a union's example by keys.ATTACK_ORDER: the registry's order
    assert tuple(ATTACKS) == ATTACK_ORDER and UNION not in ATTACKS
    assert parse_attacks("bert-attack, textfooler,pwws") == ALL
    assert parse_attacks(["pwws"]) == ("pwws",)
    with pytest.raises(UnknownAttackError, match=r"'textfool' is unknown; did you mean 'textfooler'\? known: "
                                                 r"bert-attack, pwws, textfooler"):
        parse_attacks("bert-attack,textfool")
    with pytest.raises(UnknownAttackError, match="given twice"):
        parse_attacks("pwws,pwws")
    with pytest.raises(UnknownAttackError, match="no attack given"):
        parse_attacks(" , ")
    with pytest.raises(UnknownAttackError, match="'union' is unknown"):
        get_attack("union")  # the name of the union rows, never a recipe


def test_cli_and_sweep_config_refuse_unknown_attacks(tmp_path, capsys):
    from attack_workers.cli import main
    from tune.config import ConfigError, sweep_from_dict

    assert main(["evaluate", str(tmp_path), "--store", str(tmp_path / "s"), "--attacks", "bert-attack,pws"]) == 2
    assert "attack 'pws' is unknown; did you mean 'pwws'?" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"sweep.attack.attacks: ATTACKS: attack 'fooler' is unknown"):
        sweep_from_dict({"sweep": {"attack": {"attacks": ["bert-attack", "fooler"]}}})
    with pytest.raises(ConfigError, match="sweep.attack.skip_broken: needs two or more"):
        sweep_from_dict({"sweep": {"attack": {"attacks": "pwws", "skip_broken": True}}})
    spec = sweep_from_dict({"sweep": {"attack": {"attacks": "bert-attack,textfooler,pwws"}}})
    assert spec.sweep.attack.passes[0].attacks == ALL
    with pytest.raises(Exception, match="needs two or more attacks"):
        EvalConfig(store="s", attacks=("pwws",), skip_broken=True).validate()


def test_attack_keys_name_the_attack_and_share_the_union_key():
    identity = {"mlm": "m", "encoder": "e", "dataset": "mr", "split": "dev", "split_hash": "h"}
    keys = {a: attack_key("strict", AttackParams(), identity, a) for a in ALL}
    assert len(set(keys.values())) == 3
    union = union_key("strict", AttackParams(), identity)
    assert union not in keys.values()
    assert union != union_key("strict", AttackParams(), identity, skip_broken=True)
    assert keys["pwws"] != attack_key("strict", AttackParams(), identity, "pwws", skip_broken=True)


def test_counter_fitted_neighbours_and_wordnet_synonyms(worker):
    from textattack.shared import AttackedText

    from attack_workers.attack.word_swaps import CounterFittedNeighbourSwap, WordNetSynonymSwap

    lexicon = worker.backbones.lexicon
    swap = CounterFittedNeighbourSwap(lexicon, max_candidates=50, min_cos=0.5)
    neighbours = swap.candidates("terrible")
    assert 0 < len(neighbours) <= 50 and "terrible" not in neighbours
    cosines = [lexicon.cosine("terrible", w) for w in neighbours]
    assert all(c >= 0.5 for c in cosines) and cosines == sorted(cosines, reverse=True)  # nearest first
    assert swap.candidates("qwertyuiop") == []  # no vector, no neighbours
    assert "good" in WordNetSynonymSwap().candidates("well") or "good" in WordNetSynonymSwap().candidates("beneficial")
    text = AttackedText("the film has 10 moments that are not funny")
    numbers_and_negations = [t.words for t in WordNetSynonymSwap()(text, indices_to_modify=[3, 7])]
    assert numbers_and_negations == []  # numbers and negations are never replaced, as under BERT-Attack


def plan(checkpoint, store, protocol, attacks, params=None, skip_broken=False):
    params = params or AttackParams(max_candidates=8, word_similarity_threshold=LOOSE_WORD_THRESHOLD)
    config = EvalConfig(store=str(store), protocol=protocol, params=params, shard_size=100, attacks=attacks,
                        skip_broken=skip_broken)
    return plan_evaluation([str(checkpoint)], config, WorkerConfig(), ResultStore(config.store))


@pytest.mark.parametrize("protocol", ["vda-paper", "strict"])
def test_each_recipe_builds_offline_and_attacks_a_checkpoint(worker, review_checkpoint, tmp_path, protocol):
    """One evaluation, three attacks: a shard per attack, one key each, rows with the same audit columns."""
    from textattack.constraints.semantics import WordEmbeddingDistance

    from attack_workers.attack.sentence_encoder import LocalSentenceEncoder
    from attack_workers.attack.strict import StrictWordSwap
    from attack_workers.attack.word_swaps import PartOfSpeechConsistency

    evaluation = plan(review_checkpoint, tmp_path, protocol, ALL)
    assert [s.target.attack for s in evaluation.shards] == list(ALL)
    assert len({s.target.attack_key for s in evaluation.shards}) == 3
    assert len({s.target.union_key for s in evaluation.shards}) == 1
    store = ResultStore(tmp_path)
    for shard in evaluation.shards:
        attack = worker._attack_for(shard.target)
        kinds = {type(c) for c in attack.constraints}
        if protocol == "strict":
            assert StrictWordSwap in kinds  # the protocol's rules, whatever the recipe
        else:
            assert WordEmbeddingDistance in kinds
        if shard.target.attack == "textfooler":
            assert PartOfSpeechConsistency in kinds and LocalSentenceEncoder in kinds
        result = worker.attack_shard(shard)
        rows = pd.DataFrame(result.rows)
        assert (rows["attack"] == shard.target.attack).all() and (rows["attack_key"] == shard.target.attack_key).all()
        assert set(rows["status"]) <= {"succeeded", "failed", "skipped"} and len(rows) == len(shard.examples)
        for row in rows[rows["status"] == "succeeded"].itertuples():
            assert row.perturbed_text != row.original_text and row.words_changed >= 1
        store.write_results(result.rows)
    summary = store.load_summary()
    per_attack = summary.set_index("attack")
    assert set(per_attack.index) == {*ALL, "union"}
    assert per_attack.loc["union", "attacks"] == "bert-attack,textfooler,pwws"
    robust = per_attack.loc["union", "attack_acc"]
    assert robust <= per_attack.loc[list(ALL), "attack_acc"].min() + 1e-12  # the union is the worst case
    assert per_attack.loc["union", "pending_examples"] == 0


def test_skip_broken_spares_examples_an_earlier_attack_broke(worker, review_checkpoint, tmp_path):
    params = AttackParams(max_candidates=8, word_similarity_threshold=LOOSE_WORD_THRESHOLD)
    full = plan(review_checkpoint, tmp_path / "full", "vda-paper", ALL, params)
    store = ResultStore(tmp_path / "full")
    for shard in full.shards:
        store.write_results(worker.attack_shard(shard).rows)
    fast = plan(review_checkpoint, tmp_path / "fast", "vda-paper", ALL, params, skip_broken=True)
    (shard,) = fast.shards  # every attack of the union in one shard, in order
    assert [t.attack for t in (shard.target, *shard.chain)] == list(ALL)
    assert shard.target.union_key != full.shards[0].target.union_key  # keyed apart from the full evaluation
    rows = pd.DataFrame(worker.attack_shard(shard).rows)
    assert len(rows) == 3 * len(shard.examples)
    for _, example in rows.groupby("example_id"):
        statuses = list(example.set_index("attack").loc[list(ALL), "status"])
        if "succeeded" in statuses:
            first = statuses.index("succeeded")
            assert statuses[first + 1:] == ["spared"] * (len(ALL) - first - 1)
        else:
            assert "spared" not in statuses
    ResultStore(tmp_path / "fast").write_results(rows.to_dict("records"))
    fast_union = ResultStore(tmp_path / "fast").load_summary().set_index("attack").loc["union"]
    full_union = store.load_summary().set_index("attack").loc["union"]
    assert fast_union["attack_acc"] == full_union["attack_acc"]  # the same union, fewer attacks run
    assert fast_union["num_examples"] == full_union["num_examples"]
