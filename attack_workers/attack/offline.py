"""Offline provisioning for TextAttack: the only module that sets TextAttack's environment.

Why: ``import textattack`` (0.3.11) does two things that break without network access.
(1) On first import per cache dir it runs ``nltk.download(...)`` unless the marker file
``$TA_CACHE_DIR/post_install_check_3`` exists. (2) Its augmentation module builds a
``StopwordModification()`` at import time, which reads NLTK's English stop-word corpus and raises
``LookupError: stopwords`` when it is absent. Both are provided here, from the project's own word
list (``attack_workers.lexicon.stopwords.NLTK_ENGLISH``), under a cache dir the project owns:

    <vda cache>/textattack/                 TA_CACHE_DIR (vda cache: $VDA_CACHE_DIR or ~/.cache/vda)
    <vda cache>/textattack/post_install_check_3
    <vda cache>/textattack/nltk_data/corpora/stopwords/english     NLTK_DATA

Setting ``TA_CACHE_DIR`` makes TextAttack overwrite ``HF_HOME``, ``XDG_CACHE_HOME``,
``TFHUB_CACHE_DIR`` and ``PYTORCH_TRANSFORMERS_CACHE`` at import; ``import_textattack`` restores
them, so the rest of the process (and Ray workers it starts) keep the user's caches.

Every code path that needs TextAttack calls ``import_textattack()`` (Ray actors too: they are
fresh processes), never ``import textattack`` at module level.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from attack_workers.lexicon.stopwords import NLTK_ENGLISH

POST_INSTALL_MARKER = "post_install_check_3"  # textattack/shared/utils/install.py, 0.3.11
_OVERWRITTEN_BY_TEXTATTACK = ("HF_HOME", "XDG_CACHE_HOME", "TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE")


def textattack_cache_dir() -> Path:
    """``<vda cache>/textattack``; the vda cache root is ``$VDA_CACHE_DIR`` or ``~/.cache/vda``."""
    from vda.assets import cache_dir

    return cache_dir() / "textattack"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file and rename, so concurrent workers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def provision() -> Path:
    """Create the stop-word corpus and the post-install marker, and point TextAttack/NLTK at them.

    Idempotent and safe to call from many processes at once. Must run before ``import textattack``;
    returns the TextAttack cache dir.
    """
    ta_dir = textattack_cache_dir()
    nltk_dir = ta_dir / "nltk_data"
    stopwords = nltk_dir / "corpora" / "stopwords" / "english"
    expected = "\n".join(NLTK_ENGLISH) + "\n"
    if not stopwords.is_file() or stopwords.read_text(encoding="utf-8") != expected:
        _write_atomic(stopwords, expected)
    marker = ta_dir / POST_INSTALL_MARKER
    if not marker.is_file():
        _write_atomic(marker, "written by attack_workers.attack.offline: NLTK data is provisioned offline\n")
    os.environ["TA_CACHE_DIR"] = str(ta_dir)
    nltk_paths = os.environ.get("NLTK_DATA", "").split(os.pathsep)
    if str(nltk_dir) not in nltk_paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([str(nltk_dir), *filter(None, nltk_paths)])
    if "nltk" in sys.modules:  # nltk reads $NLTK_DATA once, at import
        import nltk

        if str(nltk_dir) not in nltk.data.path:
            nltk.data.path.insert(0, str(nltk_dir))
    return ta_dir


def import_textattack() -> ModuleType:
    """Provision, then import and return ``textattack`` with the user's cache variables restored."""
    if "textattack" in sys.modules:
        return sys.modules["textattack"]
    provision()
    import transformers  # noqa: F401  (first, so its cache constants come from the user's environment)

    saved = {name: os.environ.get(name) for name in _OVERWRITTEN_BY_TEXTATTACK}
    try:
        import textattack
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return textattack
