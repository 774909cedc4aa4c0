"""TextAttack imports offline from a fresh cache, with stop words and marker provisioned by the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from attack_workers.lexicon.stopwords import BERT_ATTACK_FILTER, NLTK_ENGLISH

REPO = Path(__file__).resolve().parents[3]
PROBE = """
import json, os, sys
from attack_workers.attack.offline import import_textattack
import_textattack()
from textattack.constraints.pre_transformation import StopwordModification
print(json.dumps({"stopwords": sorted(StopwordModification().stopwords), "HF_HOME": os.environ.get("HF_HOME"),
                  "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME"), "TA_CACHE_DIR": os.environ["TA_CACHE_DIR"]}))
"""


def test_fresh_process_imports_textattack_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NLTK_DATA", "TA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(VDA_CACHE_DIR=str(tmp_path / "vda"), HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    ta_dir = tmp_path / "vda" / "textattack"
    assert report["TA_CACHE_DIR"] == str(ta_dir)
    assert report["stopwords"] == sorted(NLTK_ENGLISH)  # textattack's default list is the one we provisioned
    assert report["HF_HOME"] == str(tmp_path / "hf")  # textattack's overwrite is undone
    assert report["XDG_CACHE_HOME"] is None
    assert (ta_dir / "post_install_check_3").is_file()
    words = (ta_dir / "nltk_data" / "corpora" / "stopwords" / "english").read_text().split()
    assert words == list(NLTK_ENGLISH)
    assert "downloading" not in out.stderr.lower()


def test_stopword_lists_are_distinct_sets():
    """Hand-copied lists: a repeated word hints at a copy error, and the two protocols must protect different words."""
    for words in (NLTK_ENGLISH, BERT_ATTACK_FILTER):
        assert len(set(words)) == len(words)
        assert all(w == w.strip().lower() and w for w in words)
    assert set(NLTK_ENGLISH) != set(BERT_ATTACK_FILTER)
