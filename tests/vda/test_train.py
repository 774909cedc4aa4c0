"""The training entry point: a real short run on MR, checkpoints, resume, CLI, bad checkpoints."""

import json

import pytest
import torch

from vda.checkpoint import CheckpointError, checkpoint_hash, load_checkpoint, load_manifest
from vda.config import DataConfig, TrainConfig, VDAConfig
from vda.mlm import VocabularyMismatchError, check_same_vocab
from vda.train import fit, main

MR_SMALL = DataConfig(dataset="mr", max_train_examples=128, max_eval_examples=128, max_length=48)


def _tiny_cfg(tiny_model_dir, **kw):
    base = dict(model=tiny_model_dir, mlm=tiny_model_dir, lr=1e-3, batch_size=16, epochs=1,
                data=DataConfig(dataset="mr", max_train_examples=48, max_eval_examples=16, max_length=32),
                vda=VDAConfig(k=2, mode="sharp", sigma=1.0))
    base.update(kw)
    return TrainConfig(**base)


def test_short_real_run_on_mr_improves_dev_accuracy(tmp_path):
    from vda.batching import encode_examples
    from vda.data import load_task
    from vda.train import evaluate
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from vda.assets import default_backbone_path

    # VDA (mode, sigma, k) at its defaults, as `python -m vda.train` trains; 2x the default lr for 16 steps
    cfg = TrainConfig(data=MR_SMALL, lr=2e-4, batch_size=16, epochs=2, eval_test=False)
    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(str(default_backbone_path()))
    untrained = AutoModelForSequenceClassification.from_pretrained(str(default_backbone_path()), num_labels=2)
    dev = encode_examples(tok, load_task(MR_SMALL).splits["dev"], 64)
    before = evaluate(untrained, tok, dev, 64, torch.device("cpu"))["acc"]
    result = fit(cfg, tmp_path / "run", progress=False)
    assert result.best_metrics["dev_acc"] >= before + 0.1, (before, result.history)
    model, _, manifest = load_checkpoint(result.best_dir)
    assert evaluate(model, tok, dev, 64, torch.device("cpu"))["acc"] == pytest.approx(result.best_metrics["dev_acc"])
    assert manifest.substitution_mode == "sharp" and manifest.label_names == ["negative", "positive"]
    assert manifest.dataset["split_hashes"]["dev"] == load_task(MR_SMALL).split_hash("dev")
    assert manifest.config["vda"]["k"] == 1 and "torch" in manifest.versions


def test_checkpoint_is_plain_transformers_and_resume_continues(tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    reports = []
    first = fit(_tiny_cfg(tiny_model_dir), tmp_path / "run", on_epoch_end=reports.append, progress=False)
    assert [r.epoch for r in reports] == [1] and reports[0].checkpoint_dir == tmp_path / "run" / "last"
    AutoModelForSequenceClassification.from_pretrained(str(first.best_dir / "model"))  # plain HF loading
    resumed = fit(_tiny_cfg(tiny_model_dir, epochs=2), tmp_path / "run", resume_from=tmp_path / "run" / "last",
                  progress=False)
    assert [m["epoch"] for m in resumed.history] == [1, 2]
    assert resumed.history[1]["step"] == 2 * resumed.history[0]["step"]
    assert all(m["train_seconds"] > 0 for m in resumed.history)  # the training loop's own time, per epoch
    assert json.loads((tmp_path / "run" / "results.json").read_text())["history"][-1]["epoch"] == 2


def test_corrupt_and_partial_checkpoints_are_detected(tmp_path, tiny_model_dir):
    run = fit(_tiny_cfg(tiny_model_dir, vda=VDAConfig(lam=0.0)), tmp_path / "run", progress=False)
    good = run.best_dir
    assert len(checkpoint_hash(good)) == 16
    with pytest.raises(CheckpointError, match="no manifest.json"):
        load_manifest(tmp_path)
    weights = good / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_checkpoint(good)
    (good / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt manifest"):
        load_manifest(good)


def test_vocabulary_mismatch_is_refused(tmp_path, tokenizer, default_mlm):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]))
    small = BertTokenizerFast(vocab_file=str(vocab))
    with pytest.raises(VocabularyMismatchError, match="differs from the classifier's"):
        check_same_vocab(small, tokenizer, default_mlm)
    check_same_vocab(tokenizer, tokenizer, default_mlm)


def test_cli_validates_and_reports(tmp_path, tiny_model_dir, capsys):
    assert main(["vda.k=0", "vda.sigma=-1"]) == 2
    err = capsys.readouterr().err
    assert "vda.k: 0" in err and "vda.sigma: -1" in err
    # overrides on both sides of the options
    code = main([f"model={tiny_model_dir}", f"mlm={tiny_model_dir}", "data.max_train_examples=16", "--quiet",
                 "data.max_eval_examples=8", "data.max_length=32", "--output-dir", str(tmp_path / "cli"),
                 "batch_size=8"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["best_checkpoint"].endswith("cli/best") and "test_acc" in out["test"]


def test_cli_reports_bad_data_without_a_traceback_or_an_empty_run_dir(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\na fine film,1\na dull film,\nan odd film,0\n")
    run_dir = tmp_path / "run"
    assert main([f"model={tiny_model_dir}", f"mlm={tiny_model_dir}", f"data.dataset={data}", "--quiet",
                 "--output-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "reviews.csv (all) row 2: column 'label' is empty" in err
    assert "Traceback" not in err and not run_dir.exists()


@pytest.fixture(scope="module")
def tiny_roberta_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer RoBERTa MLM saved like a hub model (the BERT vocabulary stands in for RoBERTa's BPE)."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    path = tmp_path_factory.mktemp("tiny-roberta")
    torch.manual_seed(0)
    RobertaForMaskedLM(RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=80,
                                     pad_token_id=tokenizer.pad_token_id, type_vocab_size=1)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("strategy", ["plain", "freelb", "smart", "smix"])
def test_roberta_classifier_trains_with_vda_under_every_strategy(tmp_path, tiny_roberta_dir, tokenizer, strategy):
    """RoBERTa differs from BERT where VDA touches it: position ids from padding, no token types, encoder access."""
    from vda.augment import VirtualAugmenter
    from vda.config import StrategyConfig
    from vda.mlm import load_mlm
    from vda.objective import StepContext, VDATerm
    from vda.strategies import get_strategy

    cfg = _tiny_cfg(tiny_roberta_dir, strategy=StrategyConfig(name=strategy), eval_test=False)
    result = fit(cfg, tmp_path / "run", progress=False)
    model, _, manifest = load_checkpoint(result.best_dir)
    assert type(model).__name__ == "RobertaForSequenceClassification"
    assert manifest.config["strategy"]["name"] == strategy
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)

    mlm, _ = load_mlm(tiny_roberta_dir)
    batch = dict(tokenizer(["a fine film", "a dull, overlong and joyless mess"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0])
    ctx = StepContext(cfg.strategy, VDATerm(VirtualAugmenter(mlm, cfg.vda), cfg.vda))
    logs = get_strategy(strategy)(model.train(), batch, ctx)
    assert logs["vda"] > 0 and torch.isfinite(torch.tensor(logs["loss"]))


def test_interrupted_run_resumed_in_a_fresh_directory_equals_an_uninterrupted_one(tmp_path, tiny_model_dir,
                                                                                   monkeypatch):
    """Resume restores every RNG (dropout, VDA noise, SMix's mixing), and the test metrics stay the best epoch's."""
    from vda.batching import encode_examples
    from vda.config import StrategyConfig
    from vda.data import load_task
    from vda.train import evaluate

    monkeypatch.setattr("vda.train._improved", lambda value, best, metric: best is None)  # epoch 1 stays the best
    cfg = _tiny_cfg(tiny_model_dir, epochs=2, strategy=StrategyConfig(name="smix"))

    def killed_after_epoch_1(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "interrupted", on_epoch_end=killed_after_epoch_1, progress=False)
    torch.manual_seed(1234)  # a new process: the global RNG is elsewhere
    reports = []
    resumed = fit(cfg, tmp_path / "restored", on_epoch_end=reports.append, progress=False,
                  resume_from=tmp_path / "interrupted" / "last")  # a fresh run_dir, as a restored Tune trial gets
    full = fit(cfg, tmp_path / "full", progress=False)

    assert [m["epoch"] for m in resumed.history] == [1, 2]
    untimed = [[{k: v for k, v in m.items() if k != "train_seconds"} for m in h] for h in (resumed.history,
                                                                                          full.history)]
    assert untimed[0] == untimed[1]  # same losses to the last bit
    resumed_weights = load_checkpoint(tmp_path / "restored" / "last")[0].state_dict()
    for name, value in load_checkpoint(tmp_path / "full" / "last")[0].state_dict().items():
        assert torch.equal(resumed_weights[name], value), name

    assert resumed.test_metrics == full.test_metrics and set(full.test_metrics) == {"test_acc", "test_loss"}
    assert reports[0].best_test == full.test_metrics and not reports[0].is_best and "test_acc" not in reports[0].metrics
    best, tok, manifest = load_checkpoint(full.best_dir)
    assert manifest.epoch == 1 and manifest.metrics["test_acc"] == full.test_metrics["test_acc"]
    test = encode_examples(tok, load_task(cfg.data).splits["test"], cfg.data.max_length)
    on_best = evaluate(best, tok, test, cfg.eval_batch_size, torch.device("cpu"))
    assert on_best["acc"] == full.test_metrics["test_acc"]
    assert on_best["loss"] == pytest.approx(full.test_metrics["test_loss"], rel=1e-5)
