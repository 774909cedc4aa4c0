"""Adversarial data augmentation (paper section 6.2, Table 5): adversarial training examples.

    python -m attack_workers.ada runs/baseline/best --out results/ada --num-examples 2000
    python -m vda.train data.extra_train_file=results/ada/adversarial.jsonl ...   # +ADA (+VDA)

A checkpoint's *training* split is attacked with the pool (the project's BERT-Attack); every
successful adversarial text that the validity audit does not flag is kept with its original label and written as a JSONL that
``vda.data`` appends to the training split (``data.extra_train_file``). A set is made once: it
lives in ``<out>/<key>/`` with ``ada.json`` recording the checkpoint and attack it came from, and
a second call with the same checkpoint content and attack settings returns it without attacking.
``<out>/adversarial.jsonl`` is a link to the set of the latest call, so a config (the Table 5
preset) can name one stable path; the sweep resolves the link, so its trials record the keyed set.
The attacks go through the ordinary results store (``<out>/store``), so an interrupted
generation resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

from attack_workers.attack.attack_version import attack_code_identity
from attack_workers.lexicon.audit import LABEL_RISK_COLUMNS
from attack_workers.runtime.evaluation import EvalConfig, evaluate
from attack_workers.attack.protocols import AttackParams
from attack_workers.results.store import ResultStore, digest
from attack_workers.runtime.worker import WorkerConfig
from vda.assets import staged
from vda.checkpoint import checkpoint_hash, load_manifest

log = logging.getLogger("attack_workers.ada")
SET_FILE = "adversarial.jsonl"
INFO_FILE = "ada.json"


def ada_key(checkpoint: str | Path, config: EvalConfig, worker: WorkerConfig) -> str:
    """Checkpoint content + attack settings + models: what makes two adversarial sets the same."""
    from attack_workers.lexicon.vectors import LexiconSpec, load_lexicon

    settings = {"protocol": config.protocol, "params": dataclasses.asdict(config.params), "split": config.split,
                "num_examples": config.num_examples, "seed": config.seed, "dataset": config.dataset,
                "mlm": worker.mlm, "encoder": worker.encoder,
                "lexicon": load_lexicon(LexiconSpec(encoder=worker.encoder, mlm=worker.mlm)).content_hash,
                "audited": True, **attack_code_identity()}
    return digest([checkpoint_hash(checkpoint), json.dumps(settings, sort_keys=True)])


def generate_adversarial_set(checkpoint: str | Path, out: str | Path, config: EvalConfig,
                             worker: WorkerConfig | None = None, **evaluate_kwargs) -> Path:
    """Attack ``checkpoint``'s ``config.split`` (train) and write the successful adversarial texts.

    ``config.store`` is ignored: the attacks go to ``<out>/store``. Returns the JSONL's path.
    """
    worker = worker or WorkerConfig()
    out = Path(out)
    config = dataclasses.replace(config, store=str(out / "store"))
    directory = out / ada_key(checkpoint, config, worker)
    if (directory / INFO_FILE).is_file():
        log.info("reusing the adversarial set in %s", directory)
        return _link_latest(out, directory)
    report = evaluate([str(checkpoint)], config, worker, **evaluate_kwargs)
    if report.plan.problems or report.failed_shards:
        raise RuntimeError(f"{checkpoint}: the attack did not finish ({len(report.plan.problems)} checkpoint "
                           f"problem(s), {len(report.failed_shards)} failed shard(s)); see {config.store} and "
                           "re-run to retry what is missing")
    target = report.plan.targets[0]
    rows = ResultStore(config.store).load_examples()
    rows = rows[(rows["checkpoint_hash"] == target.checkpoint_hash) & (rows["attack_key"] == target.attack_key)]
    succeeded = rows[rows["status"] == "succeeded"].sort_values("example_id")
    # A success with a meaning flag (an antonym swap, a polarity flip) or a non-word may have changed the
    # true label: training on it with the original label would teach a wrong label. Grammar flags (tag,
    # inflection, stop word, hole) leave the label as it was: such texts stay, as in the paper's ADA.
    flagged = succeeded[list(LABEL_RISK_COLUMNS)].fillna(False).astype(bool).any(axis=1)
    succeeded = succeeded[~flagged]
    labels = load_manifest(checkpoint).label_names
    records = [{"id": f"ada-{r.example_id}", "source_example_id": r.example_id, "text_a": r.perturbed_text,
                "text_b": r.perturbed_text_b, "label": labels[int(r.label)]} for r in succeeded.itertuples()]
    info = {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_hash": target.checkpoint_hash,
            "attack_key": target.attack_key, "protocol": config.protocol,
            "params": dataclasses.asdict(config.params), "split": config.split, "seed": config.seed,
            "num_examples": config.num_examples, "attacked": int(len(rows)), "succeeded": len(records),
            "dropped_flagged": int(flagged.sum()),
            "created": time.time()}
    _write_set(directory, records, info)
    log.info("%d adversarial examples from %d attacked %s examples (%d flagged by the audit, dropped) -> %s",
             len(records), len(rows), config.split, int(flagged.sum()), directory / SET_FILE)
    return _link_latest(out, directory)


def _link_latest(out: Path, directory: Path) -> Path:
    """Point ``<out>/adversarial.jsonl`` at ``directory``'s set (atomically); return the set's own path."""
    with staged(out / SET_FILE) as tmp:
        tmp.unlink()  # the reserved name becomes the link
        tmp.symlink_to(Path(directory.name) / SET_FILE)
    return directory / SET_FILE


def _write_set(directory: Path, records: list[dict], info: dict) -> None:
    """The set and its ada.json appear together or not at all. Two generations of one set (same key)
    may run at once: both succeed, and the set of the first to finish is kept."""
    with staged(directory, directory=True) as tmp:
        (tmp / SET_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attack_workers.ada", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint directory (model/ + manifest.json)")
    parser.add_argument("--out", required=True, help="directory of adversarial sets (and their attack store)")
    parser.add_argument("--num-examples", type=int, default=1000, help="training examples to attack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", default="vda-paper")
    parser.add_argument("--max-candidates", type=int, default=48)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = EvalConfig(store="", protocol=args.protocol, split="train", num_examples=args.num_examples,
                        seed=args.seed, params=AttackParams(max_candidates=args.max_candidates))
    print(generate_adversarial_set(args.checkpoint, args.out, config, address=args.address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
