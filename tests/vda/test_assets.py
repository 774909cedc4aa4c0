"""Offline default assets: the materialised MLM loads and behaves, the MR corpus is provisioned.

These run without network (the suite runs in a private network namespace); the MR corpus test
relies on CI having run ``python -m vda.assets fetch-data`` first (``make test`` does, via setup).
"""

from __future__ import annotations

import bz2
import csv
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from vda import assets

SYNONYMS_OF_GOOD = {"great", "excellent", "decent", "nice", "fine"}


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Materialise the default MLM into a private cache, as a fresh user would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDA_CACHE_DIR", str(tmp_path_factory.mktemp("vda-cache")))
        return assets.default_mlm_path()


def test_materialised_mlm_loads_with_every_weight(mlm_dir: Path) -> None:
    from transformers import BertForMaskedLM

    model, info = BertForMaskedLM.from_pretrained(str(mlm_dir), output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_materialised_mlm_is_cached_and_reused(mlm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDA_CACHE_DIR", str(mlm_dir.parent.parent))
    assert assets.default_mlm_path() == mlm_dir
    assert [p.name for p in mlm_dir.parent.iterdir()] == [mlm_dir.name]  # no temp dirs left behind


def test_mlm_shares_backbone_vocab(mlm_dir: Path) -> None:
    backbone = assets.default_backbone_path()
    assert (mlm_dir / "vocab.txt").read_bytes() == (backbone / "vocab.txt").read_bytes()


def test_unmasked_top5_for_good_has_good_and_a_synonym(mlm_dir: Path) -> None:
    from transformers import AutoTokenizer, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(str(mlm_dir))
    model = BertForMaskedLM.from_pretrained(str(mlm_dir)).eval()
    batch = tokenizer("this movie is good .", return_tensors="pt")
    position = batch["input_ids"][0].tolist().index(tokenizer.convert_tokens_to_ids("good"))
    with torch.inference_mode():
        top5 = model(**batch).logits[0, position].topk(5).indices
    words = set(tokenizer.convert_ids_to_tokens(top5.tolist()))
    assert "good" in words and words & SYNONYMS_OF_GOOD, words


def test_the_shipped_mlm_predicts_a_masked_word_from_its_context(mlm_dir: Path) -> None:
    """What the head on the frozen encoder could not do: the masked noun comes from the sentence."""
    from transformers import AutoTokenizer, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(str(mlm_dir))
    model = BertForMaskedLM.from_pretrained(str(mlm_dir)).eval()
    batch = tokenizer("the director has made a [MASK] that is funny and moving .", return_tensors="pt")
    position = batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    with torch.inference_mode():
        top10 = set(tokenizer.convert_ids_to_tokens(model(**batch).logits[0, position].topk(10).indices.tolist()))
    assert top10 & {"film", "movie", "comedy"}, top10


def test_the_asset_holds_fine_tuned_layers_over_the_wheels_embeddings(mlm_dir: Path) -> None:
    """Only layers and head ship; the embeddings VDA mixes are the wheel's, bit for bit."""
    import hashlib
    import json

    from safetensors.torch import load_file

    shipped = load_file(str(assets.MLM_ASSET_FILE))
    assert shipped and all(k.startswith(assets.MLM_SHIPPED_PREFIXES) for k in shipped)
    wheel = load_file(str(assets.default_backbone_path() / "model.safetensors"))
    joined = load_file(str(mlm_dir / "model.safetensors"))
    name = "embeddings.word_embeddings.weight"
    assert torch.equal(joined[f"bert.{name}"], wheel[name])
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(joined[f"bert.{layer}"], wheel[layer].float())
    info = json.loads(assets.MLM_ASSET_INFO.read_text())
    assert info["asset_sha256"] == hashlib.sha256(assets.MLM_ASSET_FILE.read_bytes()).hexdigest()


def test_the_head_only_baseline_is_still_materialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDA_CACHE_DIR", str(tmp_path))
    assert assets.head_only_mlm_path().name.startswith("head-only-")


def test_missing_asset_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(assets, "MLM_ASSET_FILE", tmp_path / "absent.safetensors")
    with pytest.raises(assets.MissingAssetError, match="train_mlm.py"):
        assets.default_mlm_path()


def test_missing_corpus_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VDA_CACHE_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as excinfo:
        assets.mr_corpus_path()
    assert isinstance(excinfo.value, assets.MissingAssetError)
    assert "python -m vda.assets fetch-data" in str(excinfo.value) and "make setup" in str(excinfo.value)


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VDA_CACHE_DIR", str(tmp_path / "new"))
    assert assets.cache_dir() == tmp_path / "new" and (tmp_path / "new").is_dir()


def test_mr_corpus_row_counts() -> None:
    with bz2.open(assets.mr_corpus_path(), "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert Counter(r["category"] for r in rows) == {"fresh": 7403, "rotten": 5405, "plot": 1097}
    reviews = [r for r in rows if r["category"] != "plot"]
    exact = {" ".join(r["text"].split()): r["category"] for r in reviews}
    assert Counter(exact.values()) == {"fresh": 7368, "rotten": 5384}  # 12,752 distinct texts
    # Three more pairs differ only in case/punctuation ("A pretentious mess." / "a pretentious mess").
    loose = {re.sub(r"\W+", "", t.lower()): c for t, c in exact.items()}
    assert Counter(loose.values()) == {"fresh": 7367, "rotten": 5382}  # 12,749
