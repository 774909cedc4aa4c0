"""Checkpoint directories: readable by other users, and manifests with wrong types refused by name."""

import json
import os
import stat

import pytest

from vda.checkpoint import CheckpointError, Manifest, load_checkpoint, load_manifest, save_checkpoint


def _manifest(**kw) -> Manifest:
    base = dict(run_id="r", config={}, dataset={"label_names": ["neg", "pos"]}, epoch=1, step=2, metrics={},
                substitution_mode="sharp")
    return Manifest(**{**base, **kw})


def _modes(root):
    """(the set of directory modes, the set of file modes) of ``root`` and everything below it."""
    paths = [root, *root.rglob("*")]
    return ({stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()},
            {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()})


@pytest.mark.parametrize("umask, dirs, files", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_checkpoints_are_readable_by_other_users_unless_the_umask_forbids(tmp_path, tiny_classifier, tokenizer,
                                                                          umask, dirs, files):
    """Attack workers on shared storage may run as another user; mkdtemp (0700) and safetensors (0600) lock them out."""
    old = os.umask(umask)
    try:
        saved = save_checkpoint(tmp_path / "best", tiny_classifier, tokenizer, _manifest(),
                                write_extra=lambda d: (d / "extra.json").write_text("{}"))
    finally:
        os.umask(old)
    assert (saved / "model" / "model.safetensors").is_file()
    assert _modes(saved) == ({dirs}, {files})


@pytest.mark.parametrize("field, value", [("format_version", "1"), ("format_version", "abc"), ("format_version", None),
                                          ("format_version", True), ("epoch", "3"), ("config", None),
                                          ("dataset", {"name": "mr"}), ("dataset", {"label_names": "neg,pos"})])
def test_a_manifest_value_of_the_wrong_type_is_a_checkpoint_error(tmp_path, field, value):
    raw = json.loads(json.dumps(_manifest().__dict__))
    raw[field] = value
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"manifest has values of the wrong type \(.*" + field):
        load_manifest(tmp_path)
    with pytest.raises(CheckpointError):  # what attack workers and the trainer call
        load_checkpoint(tmp_path)


def test_a_manifest_that_is_not_an_object_is_a_checkpoint_error(tmp_path):
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="corrupt manifest .a JSON list"):
        load_manifest(tmp_path)
