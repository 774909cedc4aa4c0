"""Shared fixtures: offline mode for every test, the packaged backbone and the default MLM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


def _cache_without_tables(root: Path, source: Path) -> Path:
    """A VDA_CACHE_DIR at ``root`` that links every entry of ``source`` except its candidate tables."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name != "candidates":
            (root / entry.name).symlink_to(entry.resolve())
    return root


@pytest.fixture(scope="session", autouse=True)
def scratch_candidate_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests write their VDA candidate tables (vda.candidates) to a scratch cache, not the user's.

    Set before any Ray worker starts, so trials and the sweep's up-front table task inherit it.
    """
    from vda.assets import cache_dir

    patch = pytest.MonkeyPatch()
    root = _cache_without_tables(tmp_path_factory.mktemp("vda-cache"), cache_dir())
    patch.setenv("VDA_CACHE_DIR", str(root))
    yield root
    patch.undo()


@pytest.fixture()
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_candidate_tables: Path) -> Path:
    """A VDA_CACHE_DIR of this test alone (data and lexicon linked in); returns where its candidate tables go."""
    root = _cache_without_tables(tmp_path / "cache", scratch_candidate_tables)
    monkeypatch.setenv("VDA_CACHE_DIR", str(root))
    return root / "candidates"


@pytest.fixture(scope="session")
def backbone_path() -> str:
    from vda.assets import default_backbone_path

    return str(default_backbone_path())


@pytest.fixture(scope="session")
def tokenizer(backbone_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(backbone_path)


@pytest.fixture(scope="session")
def default_mlm():
    """The packaged encoder + the repo's trained MLM head, frozen."""
    from vda.mlm import load_mlm

    model, _ = load_mlm("default")
    return model


@pytest.fixture()
def tiny_classifier(tokenizer):
    """A 2-layer, hidden-32 BERT classifier over the real 30522-token vocabulary (fast, random weights)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, num_labels=2)
    return BertForSequenceClassification(cfg)


@pytest.fixture()
def tiny_mlm(tokenizer):
    """A 2-layer, hidden-32 BERT masked LM sharing the real vocabulary (random weights, frozen)."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64)
    return BertForMaskedLM(cfg).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer, hidden-32 BERT MLM on the real vocabulary, saved like a hub model (used as model and MLM)."""
    from transformers import BertConfig, BertForMaskedLM

    path = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
