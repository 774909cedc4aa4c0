"""``transfer``: replaying a planted store's successes on real checkpoints gives the right rates.

Model A is the conftest's review checkpoint (fine-tuned on the sentences below, so it gets them
right). Model B is A with 50 added to the positive class's bias: it calls every text positive.
The planted texts therefore flip A and not B by construction, and the expected rates follow:

    row  label     original (A, B)   perturbed (A, B)   on A             on B
    r1   positive  pos, pos          neg, pos           counted, fooled  counted, not fooled
    r2   positive  pos, pos          pos, pos           counted          counted
    r3   negative  neg, pos          pos, pos           counted, fooled  original wrong: outside n

A -> A (the self-check) is 2 of 3, A -> B 0 of 2. A's predictions are checked first with a plain
forward pass of the Hugging Face model, apart from the wrapper the transfer uses.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from attack_workers.cli import main
from attack_workers.results.store import ResultStore
from attack_workers.results.transfer import TransferStore
from attack_workers.results.uncertainty import wilson_interval
from attack_workers.runtime.checkpoints import EvaluationError, vet_checkpoint
from attack_workers.runtime.transfer import TransferConfig, TransferError, transfer, unseen_words

POSITIVE = "a gorgeous and moving film with wonderful performances"
POSITIVE_2 = "the acting is superb and the story is touching"
POSITIVE_2_PARAPHRASE = "the acting is superb and the story is moving"
NEGATIVE = "a dull and tedious film with nothing to say"
# (id, label name, original, perturbed, substitutions); r3 substitutes a word the train split never has
PLANTED = [("r1", "positive", POSITIVE, NEGATIVE, [["gorgeous", "dull"], ["moving", "tedious"]]),
           ("r2", "positive", POSITIVE_2, POSITIVE_2_PARAPHRASE, [["touching", "Moving"]]),
           ("r3", "negative", NEGATIVE, POSITIVE, [["dull", "Gorgeous"], ["tedious", "scintillating"]])]
KEY = "k-strict"


def _predictor(checkpoint: Path):
    """A plain forward pass of the checkpoint's Hugging Face model: text -> predicted label."""
    from vda.checkpoint import load_checkpoint

    model, tokenizer, _ = load_checkpoint(checkpoint)

    def predict(text: str) -> int:
        with torch.no_grad():
            return int(model(**tokenizer(text, return_tensors="pt")).logits.argmax(-1))

    return predict


@pytest.fixture(scope="module")
def biased_checkpoint(review_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model B: A whose positive logit is raised by 50, so it predicts positive on every text."""
    from vda.checkpoint import load_checkpoint, save_checkpoint

    model, tokenizer, manifest = load_checkpoint(review_checkpoint)
    with torch.no_grad():
        model.classifier.bias[manifest.label_names.index("positive")] += 50.0
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "biased", model, tokenizer,
                           dataclasses.replace(manifest, run_id="biased"))


@pytest.fixture(scope="module")
def relabelled_checkpoint(review_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A's weights with its two label names in the other order: a checkpoint of other labels."""
    from vda.checkpoint import load_checkpoint, save_checkpoint

    model, tokenizer, manifest = load_checkpoint(review_checkpoint)
    dataset = {**manifest.dataset, "label_names": manifest.label_names[::-1]}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "relabelled", model, tokenizer,
                           dataclasses.replace(manifest, run_id="relabelled", dataset=dataset))


def plant_store(root: Path, checkpoint: Path, make_row, planted=PLANTED, extra_failed: bool = True) -> Path:
    """A results store holding ``planted`` as successes of ``checkpoint`` (and one failed row), with its record."""
    info = vet_checkpoint(checkpoint)
    labels = info.manifest.label_names
    store = ResultStore(root)
    store.write_checkpoint(info.record())
    rows = [make_row(i, status="succeeded", checkpoint=info.checkpoint_hash, key=KEY, protocol="strict",
                     label=labels.index(label), original_text=original, perturbed_text=perturbed,
                     clean_pred=labels.index(label), adv_pred=1 - labels.index(label),
                     substitutions=json.dumps(pairs))
            for i, label, original, perturbed, pairs in planted]
    if extra_failed:
        rows.append(make_row("r4", status="failed", checkpoint=info.checkpoint_hash, key=KEY, protocol="strict",
                             original_text=POSITIVE_2, perturbed_text=POSITIVE_2))
    store.write_examples(rows)
    return root


def test_the_premise_holds_a_is_fooled_by_r1_and_r3_and_b_calls_everything_positive(review_checkpoint,
                                                                                     biased_checkpoint):
    labels = vet_checkpoint(review_checkpoint).manifest.label_names
    a, b = _predictor(review_checkpoint), _predictor(biased_checkpoint)
    for _, label, original, perturbed, _ in PLANTED:
        assert a(original) == labels.index(label)
        assert b(original) == b(perturbed) == labels.index("positive")
    assert a(NEGATIVE) == labels.index("negative")
    assert a(POSITIVE_2_PARAPHRASE) == labels.index("positive")


def test_a_text_that_flips_a_and_not_b_gives_the_right_rates(tmp_path, review_checkpoint, biased_checkpoint,
                                                             make_row):
    source = plant_store(tmp_path / "attacks", review_checkpoint, make_row)
    config = TransferConfig(source_store=str(source), store=str(tmp_path / "out"))
    report = transfer([str(review_checkpoint), str(biased_checkpoint)], config, local=True)
    assert report.ok and report.plan.texts_total == 6 and report.plan.texts_already_done == 0
    a, b = vet_checkpoint(review_checkpoint).checkpoint_hash, vet_checkpoint(biased_checkpoint).checkpoint_hash
    summary = report.summary.set_index("target_hash")
    assert (summary.loc[a, ["replayed", "n", "fooled"]].tolist(), bool(summary.loc[a, "self"])) == ([3, 3, 2], True)
    assert summary.loc[a, "rate"] == pytest.approx(2 / 3)
    assert (summary.loc[a, "rate_low"], summary.loc[a, "rate_high"]) == wilson_interval(2, 3)
    assert summary.loc[b, ["replayed", "n", "fooled", "rate"]].tolist() == [3, 2, 0, 0.0]
    assert (summary.loc[b, "rate_low"], summary.loc[b, "rate_high"]) == wilson_interval(0, 2)
    rows = TransferStore(tmp_path / "out").load().set_index(["target_hash", "example_id"])
    # B calls r3's perturbed text positive, not its label, but got the original wrong already: outside n
    assert rows.loc[(b, "r3"), ["target_correct", "fooled"]].tolist() == [False, True]
    assert rows.loc[(b, "r1"), ["target_correct", "fooled"]].tolist() == [True, False]
    assert rows.loc[(a, "r1"), ["target_correct", "fooled", "perturbed_text"]].tolist() == [True, True, NEGATIVE]
    assert set(rows["target_run_id"]) == {"biased", vet_checkpoint(review_checkpoint).manifest.run_id}
    assert set(ResultStore(tmp_path / "out").load_checkpoints()["checkpoint_hash"]) == {a, b}  # targets' manifests

    again = transfer([str(review_checkpoint), str(biased_checkpoint)], config, local=True)  # resume: nothing new
    assert again.plan.jobs == [] and again.plan.texts_already_done == 6
    pd.testing.assert_frame_equal(again.summary, report.summary)


def test_successes_substituting_a_word_never_seen_in_training_are_counted(tmp_path, review_checkpoint, make_row):
    source = plant_store(tmp_path / "attacks", review_checkpoint, make_row)
    report = transfer([str(review_checkpoint)], TransferConfig(str(source), str(tmp_path / "out")), local=True)
    (rec,) = report.unseen.to_dict("records")  # "Moving" and "Gorgeous" occur in train (lower-cased); not
    assert (rec["successes"], rec["known"], rec["with_unseen"]) == (3, 3, 1)  # "scintillating"
    assert rec["common_unseen"] == "scintillating (1)"
    rows = TransferStore(tmp_path / "out").load().set_index("example_id")
    assert [json.loads(rows.loc[i, "unseen_words"]) for i in ("r1", "r2", "r3")] == [[], [], ["scintillating"]]
    words = frozenset({"well-made", "film"})
    assert unseen_words(json.dumps([["a", "Well-Made"], ["b", "1999"], ["c", "films"]]), words) == ["films"]
    assert unseen_words(None, words) is None


def test_bad_input_fails_with_a_clear_error(tmp_path, review_checkpoint, relabelled_checkpoint, make_row):
    target = [str(review_checkpoint)]
    with pytest.raises(TransferError, match="no results store there"):
        transfer(target, TransferConfig(str(tmp_path / "nowhere"), str(tmp_path / "out")), local=True)
    failed_only = ResultStore(tmp_path / "failed")
    failed_only.write_examples([make_row("e1", status="failed"), make_row("e2", status="skipped")])
    with pytest.raises(TransferError, match=r"no successful attack to replay among 2 selected row\(s\)"):
        transfer(target, TransferConfig(str(tmp_path / "failed"), str(tmp_path / "out")), local=True)
    source = str(plant_store(tmp_path / "attacks", review_checkpoint, make_row))
    with pytest.raises(TransferError, match="no successful attack.*choose other --protocol"):
        transfer(target, TransferConfig(source, str(tmp_path / "out"), protocols=("vda-paper",)), local=True)
    with pytest.raises(TransferError, match="--sources 'nobody' names no checkpoint"):
        transfer(target, TransferConfig(source, str(tmp_path / "out"), sources=("nobody",)), local=True)
    with pytest.raises(TransferError, match=r"trained with labels \['positive', 'negative'\] but source checkpoint"):
        transfer([str(relabelled_checkpoint)], TransferConfig(source, str(tmp_path / "out")), local=True)
    with pytest.raises(EvaluationError, match="no such file or directory"):
        transfer([str(tmp_path / "missing")], TransferConfig(source, str(tmp_path / "out")), local=True)
    assert not (tmp_path / "out" / "transfer").exists()  # nothing written by a refused transfer


def test_a_source_whose_store_lost_its_record_is_refused(tmp_path, review_checkpoint, make_row):
    source = plant_store(tmp_path / "attacks", review_checkpoint, make_row)
    for record in (source / "checkpoints").glob("*.parquet"):
        record.unlink()
    with pytest.raises(TransferError, match="no record under .*its training data is unknown"):
        transfer([str(review_checkpoint)], TransferConfig(str(source), str(tmp_path / "out")), local=True)


def test_cli_transfer_and_transfer_summary(tmp_path, capsys, review_checkpoint, biased_checkpoint, make_row):
    source = plant_store(tmp_path / "attacks", review_checkpoint, make_row)
    out = str(tmp_path / "out")
    a = vet_checkpoint(review_checkpoint).checkpoint_hash
    assert main(["transfer", "--from", str(source), "--to", str(review_checkpoint), str(biased_checkpoint),
                 "--store", out, "--local", "--sources", a[:6], "--attacks", "bert-attack"]) == 0
    printed = capsys.readouterr().out
    assert "1 source(s) x 2 target(s): 6 replayed text(s), 0 already in" in printed
    assert main(["transfer-summary", "--store", out]) == 0
    table = capsys.readouterr().out
    assert table.strip() in printed
    assert [line.split()[-5:] for line in table.splitlines()[2:4]] == [["3", "3", "0.667", "[0.208,", "0.939]"],
                                                                       ["3", "2", "0.000", "[0.000,", "0.658]"]]
    assert "scintillating (1)" in table
    assert main(["transfer-summary", "--store", out, "--csv"]) == 0
    assert {"rate", "rate_low", "rate_high", "n"} <= set(capsys.readouterr().out.splitlines()[0].split(","))
    assert main(["transfer", "--from", str(tmp_path / "nowhere"), "--to", str(review_checkpoint),
                 "--store", out, "--local"]) == 2
    assert "no results store there" in capsys.readouterr().err


def test_sentence_pairs_are_replayed_as_pairs(tmp_path, pair_checkpoint, make_row):
    """A pair row's two texts reach the model together: the replayed predictions equal a direct forward pass."""
    from vda.checkpoint import load_checkpoint

    first, second = "the film was released in cinemas last summer", "the movie came out in theaters last summer"
    info = vet_checkpoint(pair_checkpoint)
    store = ResultStore(tmp_path / "attacks")
    store.write_checkpoint(info.record())
    store.write_examples([make_row("p1", status="succeeded", checkpoint=info.checkpoint_hash, label=0,
                                   original_text=first, original_text_b=second, perturbed_text=first,
                                   perturbed_text_b="the cat sat on a mat")])
    transfer([str(pair_checkpoint)], TransferConfig(str(tmp_path / "attacks"), str(tmp_path / "out")), local=True)
    (replayed,) = TransferStore(tmp_path / "out").load().to_dict("records")
    model, tokenizer, _ = load_checkpoint(pair_checkpoint)
    with torch.no_grad():
        direct = [int(model(**tokenizer(first, b, return_tensors="pt")).logits.argmax(-1))
                  for b in (second, "the cat sat on a mat")]
    assert [replayed["target_clean_pred"], replayed["target_adv_pred"]] == direct
    assert replayed["original_text_b"] == second


def test_ray_tasks_give_the_same_rows_as_a_local_run(tmp_path, local_ray, review_checkpoint, biased_checkpoint,
                                                     make_row):
    from attack_workers.runtime.pool import PoolConfig

    source = plant_store(tmp_path / "attacks", review_checkpoint, make_row)
    targets = [str(review_checkpoint), str(biased_checkpoint)]
    local = transfer(targets, TransferConfig(str(source), str(tmp_path / "local")), local=True)
    on_ray = transfer(targets, TransferConfig(str(source), str(tmp_path / "ray")), PoolConfig(num_workers=2))
    assert on_ray.ok and len(on_ray.plan.jobs) == 2
    columns = ["source_hash", "target_hash", "example_id", "target_clean_pred", "target_adv_pred", "fooled"]
    pd.testing.assert_frame_equal(TransferStore(tmp_path / "ray").load()[columns],
                                  TransferStore(tmp_path / "local").load()[columns])
    pd.testing.assert_frame_equal(on_ray.summary, local.summary)
