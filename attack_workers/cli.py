"""Command line: ``python -m attack_workers evaluate ...``, ``... summary ...`` and ``... report ...``.

    python -m attack_workers evaluate runs/sweep1 --store results/attacks            # every checkpoint below
    python -m attack_workers evaluate 'runs/*/best' --store results/attacks --protocol textattack \\
        --num-examples 200 --workers 8 --address auto                                 # on a running cluster
    python -m attack_workers summary --store results/attacks --columns config.vda.sigma,config.vda.lam
    python -m attack_workers report --store results/attacks --out results            # results/report.html
    python -m attack_workers export --store results/attacks --out results/studies/NAME  # commit a store (docs/store.md)
    python -m attack_workers import --from results/studies/NAME --store results/attacks
    python -m attack_workers transfer --from results/attacks --to runs/ --store results/transfer  # docs/attacks.md
    python -m attack_workers transfer-summary --store results/transfer               # source -> target rates

``summary`` prints Att Acc with its 95 % Wilson interval over the checkpoint's examples,
"0.210 [0.185, 0.237]"; ``--csv`` gives the bounds as ``attack_acc_low``/``attack_acc_high``.

Exit status: 0 when everything was evaluated, 1 when a checkpoint was skipped or a shard failed
(the store records why; re-running retries only what is missing), 2 for unusable input.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.tables import format_paper_table
from attack_workers.runtime.checkpoints import EvaluationError
from attack_workers.attack.protocols import PROTOCOLS, AttackParams, UnknownProtocolError
from attack_workers.attack.recipes import ATTACKS, DEFAULT_ATTACK, parse_attacks
from attack_workers.results.export import add_parsers as add_export_parsers, run_export, run_import
from attack_workers.results.store import load_summary

if TYPE_CHECKING:
    import pandas as pd


def _protocols_help() -> str:
    """The --protocol values with their meanings, read from PROTOCOLS so a new protocol is listed as it is added."""
    width = max(len(name) for name in PROTOCOLS)
    return "protocols (--protocol):\n" + "\n".join(f"  {p.name:<{width}}  {p.description}" for p in PROTOCOLS.values())


def _resources(text: str) -> float:
    """An argparse type: a finite number >= 0 (nan or inf would reach Ray's scheduler)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m attack_workers",
                                     description="BERT-Attack robustness of VDA checkpoints, on a Ray pool, into a "
                                                 "Parquet results store.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_protocols_help())
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="attack checkpoints with BERT-Attack on a Ray pool, into a results store",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_protocols_help())
    ev.add_argument("checkpoints", nargs="+",
                    help="checkpoint directories, globs, or directories holding checkpoints "
                         "(e.g. a sweep's experiment dir)")
    ev.add_argument("--store", required=True, help="results store directory (created if missing)")
    ev.add_argument("--protocol", default="vda-paper", help=f"one of: {', '.join(PROTOCOLS)} (default: vda-paper)")
    ev.add_argument("--attacks", default=DEFAULT_ATTACK,
                    help=f"comma-separated attack recipes, each under the protocol's rules: {', '.join(ATTACKS)} "
                         f"(default: {DEFAULT_ATTACK}); two or more add 'union' rows (robust only if every attack "
                         "failed)")
    ev.add_argument("--union-only", action="store_true",
                    help="only the union is wanted: an example one attack broke is not attacked by the later "
                         "ones (faster; per-attack numbers are then incomplete, and keyed apart)")
    ev.add_argument("--split", default="dev", choices=["train", "dev", "test"], help="split to attack (default: dev)")
    ev.add_argument("--dataset", help="attack this dataset instead of the one in each manifest (same labels required)")
    ev.add_argument("--num-examples", type=int,
                    help="examples per checkpoint, a seeded random sample "
                         "(default: the protocol's, 1000; 300 for IMDB/Yelp)")
    ev.add_argument("--seed", type=int, default=0, help="example sampling seed (default: 0)")
    ev.add_argument("--max-candidates", type=int, default=AttackParams.max_candidates,
                    help="BERT-Attack's K, MLM candidates per word (default: 48, as in the paper)")
    ev.add_argument("--word-threshold", type=float, default=AttackParams.word_similarity_threshold,
                    help="vda-paper: minimum counter-fitted word cosine between a word and its substitute "
                         f"(default: {AttackParams.word_similarity_threshold}, calibrated; docs/attacks.md)")
    ev.add_argument("--workers", type=int, help="number of attack actors (default: one per GPU, else one per CPU)")
    ev.add_argument("--gpus-per-worker", type=_resources,
                    help="GPUs per actor; fractions share a GPU (default: 1 when the cluster has GPUs)")
    ev.add_argument("--cpus-per-worker", type=_resources, default=1.0,
                    help="CPUs (torch threads) per actor (default: 1)")
    ev.add_argument("--shard-size", type=int, default=10, help="examples per shard (default: 10)")
    ev.add_argument("--max-retries", type=int, default=2, help="re-runs of a shard whose actor died (default: 2)")
    ev.add_argument("--mlm", default="default", help="masked LM for candidates: 'default' (packaged) or a directory")
    ev.add_argument("--encoder", default="default",
                    help="sentence-transformers directory for the similarity constraint (default: packaged MiniLM)")
    ev.add_argument("--batch-size", type=int, default=64, help="victim queries per forward pass (default: 64)")
    ev.add_argument("--address", help="Ray cluster address (e.g. 'auto'); default: start a local Ray instance")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    sm = sub.add_parser("summary", help="print the paper's table (Ori Acc, Att Acc with its 95%% Wilson interval, "
                                         "Q Num, Perturb; Flagged when audited) from a store")
    sm.add_argument("--store", required=True)
    sm.add_argument("--protocol", help="only this protocol")
    sm.add_argument("--attack", help="only this attack (bert-attack, textfooler, pwws, or union)")
    sm.add_argument("--columns", default="", help="extra summary columns, comma-separated (e.g. config.vda.sigma)")
    sm.add_argument("--csv", action="store_true", help="print every summary column as CSV instead")
    sm.add_argument("--verdicts", nargs="+", metavar="FILE",
                    help="reading-record CSVs (the Review tab's download, `review`, docs/results/reading/): add the "
                         "acceptance and the reader-adjusted Att Acc per attack key and method (with --csv: only "
                         "that table, as CSV)")

    _add_transfer_parsers(sub)
    add_export_parsers(sub)

    rp = sub.add_parser("report", help="write one self-contained HTML page: the table, the plots and every "
                                       "attacked example with its substitutions highlighted (docs/report.md)")
    rp.add_argument("--store", required=True)
    rp.add_argument("--out", help="directory for report.html (default: the store's parent)")
    rp.add_argument("--review", type=int, metavar="N",
                    help="add a Review tab: N successes per method and attack key, blinded and shuffled")
    rp.add_argument("--review-seed", type=int, default=0, help="seed of the review sample (default: 0)")
    rp.add_argument("--verdicts", nargs="+", metavar="FILE", default=(),
                    help="reading-record CSVs: add the acceptance and the reader-adjusted Att Acc per method")

    rv = sub.add_parser("review", help="read a blinded sample of successful attacks in the terminal and write "
                                       "verdicts (the Review tab's CSV); resumes where the file stops")
    rv.add_argument("--store", required=True)
    rv.add_argument("-n", type=int, default=20, help="successes per method and attack key (default: 20)")
    rv.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0; the report's --review-seed)")
    rv.add_argument("--reviewer", required=True, help="who reads (written into every row)")
    rv.add_argument("--out", required=True, help="verdict CSV to write (appended to when it exists)")
    return parser


def _add_transfer_parsers(sub: argparse._SubParsersAction) -> None:
    """``transfer`` (replay a store's successful adversarial texts on other checkpoints) and ``transfer-summary``."""
    tr = sub.add_parser("transfer", help="replay the successful adversarial texts of a results store on other "
                                         "checkpoints (no search) and store transfer rates (docs/attacks.md)")
    tr.add_argument("--from", dest="source_store", metavar="STORE", required=True,
                    help="results store holding the attacks")
    tr.add_argument("--to", dest="targets", metavar="CHECKPOINT", nargs="+", required=True,
                    help="target checkpoint directories, globs, or directories holding checkpoints")
    tr.add_argument("--store", required=True,
                    help="transfer store directory (rows under <store>/transfer; may be the --from store)")
    tr.add_argument("--sources", default="", help="only these source checkpoints, comma-separated: hashes, hash "
                                                  "prefixes or run ids (default: every one with a success)")
    tr.add_argument("--protocol", default="", help="only these protocols, comma-separated (default: all)")
    tr.add_argument("--attacks", default="", help=f"only these attacks, comma-separated: {', '.join(ATTACKS)} "
                                                  "(default: all)")
    tr.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: 64)")
    tr.add_argument("--local", action="store_true", help="classify in this process, without Ray")
    tr.add_argument("--workers", type=int, help="Ray tasks at once, one target each (default: what the cluster fits)")
    tr.add_argument("--gpus-per-worker", type=_resources, help="GPUs per task (default: 1 when the cluster has GPUs)")
    tr.add_argument("--cpus-per-worker", type=_resources, default=1.0, help="CPUs (torch threads) per task "
                                                                            "(default: 1)")
    tr.add_argument("--address", help="Ray cluster address (e.g. 'auto'); default: start a local Ray instance")
    ts = sub.add_parser("transfer-summary", help="print the transfer matrix (source -> target, rate [95%% CI], n) "
                                                 "and the share of successes substituting words unseen in training")
    ts.add_argument("--store", required=True)
    ts.add_argument("--csv", action="store_true", help="print every transfer-matrix column as CSV instead")


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _transfer(args: argparse.Namespace) -> int:
    from attack_workers.results.transfer import format_transfer_table
    from attack_workers.runtime.transfer import TransferConfig, transfer

    config = TransferConfig(source_store=args.source_store, store=args.store, sources=_split_list(args.sources),
                            protocols=_split_list(args.protocol), attacks=_split_list(args.attacks),
                            batch_size=args.batch_size)
    pool = None
    if not args.local:
        from attack_workers.runtime.pool import PoolConfig

        pool = PoolConfig(num_workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                          cpus_per_worker=args.cpus_per_worker)
    report = transfer(args.targets, config, pool, address=args.address, local=args.local)
    plan = report.plan
    print(f"{len(plan.sources)} source(s) x {len(plan.targets)} target(s): {plan.texts_total} replayed text(s), "
          f"{plan.texts_already_done} already in {args.store}, the rest classified in {report.seconds:.0f}s")
    print(format_transfer_table(report.summary, report.unseen))
    for path, error in report.failed:
        print(f"failed target {path}: {error}", file=sys.stderr)
    return 0 if report.ok else 1


def _transfer_summary(args: argparse.Namespace) -> int:
    from attack_workers.results.transfer import TransferStore, format_transfer_table, transfer_summary, unseen_summary

    rows = TransferStore(args.store).load()
    if args.csv:
        transfer_summary(rows).to_csv(sys.stdout, index=False)
    else:
        print(format_transfer_table(transfer_summary(rows), unseen_summary(rows)))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from attack_workers.runtime.evaluation import EvalConfig, evaluate
    from attack_workers.runtime.pool import PoolConfig
    from attack_workers.runtime.worker import WorkerConfig

    config = EvalConfig(store=args.store, protocol=args.protocol, split=args.split, dataset=args.dataset,
                        num_examples=args.num_examples, seed=args.seed, attacks=parse_attacks(args.attacks),
                        skip_broken=args.union_only,
                        params=AttackParams(max_candidates=args.max_candidates,
                                            word_similarity_threshold=args.word_threshold), shard_size=args.shard_size)
    worker = WorkerConfig(mlm=args.mlm, encoder=args.encoder, model_batch_size=args.batch_size)
    pool = PoolConfig(num_workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                      cpus_per_worker=args.cpus_per_worker, max_retries=args.max_retries)
    report = evaluate(args.checkpoints, config, worker, pool, address=args.address, progress=not args.no_progress)
    plan = report.plan
    checkpoints = len({t.checkpoint_hash for t in plan.targets})
    print(f"{checkpoints} checkpoint(s) x {len(config.attacks)} attack(s), {plan.examples_total} attacked "
          f"example(s): {plan.examples_already_done} "
          f"already in {args.store}, {report.examples_attacked} attacked now in {report.seconds:.0f}s")
    print(format_paper_table(report.summary))
    for problem in plan.problems:
        print(f"skipped {problem.path}: {problem.error}", file=sys.stderr)
    for path, error in report.failed_shards:
        print(f"failed shard of {path}: {error}", file=sys.stderr)
    return 0 if report.ok else 1


def _summary(args: argparse.Namespace) -> int:
    summary = load_summary(args.store)
    if args.protocol and len(summary):
        summary = summary[summary["protocol"] == args.protocol]
    if args.attack and len(summary):
        summary = summary[summary["attack"] == args.attack]
    if args.csv and args.verdicts:
        return _reader_summary(args.store, summary, args.verdicts, csv=True)
    if args.csv:
        summary.to_csv(sys.stdout, index=False)
    else:
        print(format_paper_table(summary, tuple(c for c in args.columns.split(",") if c)))
    return _reader_summary(args.store, summary, args.verdicts, csv=False) if args.verdicts else 0


def _reader_summary(store: str, summary: pd.DataFrame, files: list[str], csv: bool) -> int:
    """Print the reader table (``analysis.verdicts``), as CSV with ``csv``; count on stderr the verdicts that joined
    no success."""
    if summary.empty:
        return 0
    from attack_workers.results.store import load_examples
    from analysis.verdicts import format_reader_table, join_verdicts, read_verdicts, reader_table

    examples = load_examples(store)
    labelled, unmatched = join_verdicts(examples, read_verdicts(files, examples))
    table = reader_table(summary, labelled)
    if csv:
        table.to_csv(sys.stdout, index=False)
    else:
        print("\nreaders' verdicts (reader-adjusted Att Acc: share of examples no reader-accepted attack broke)")
        print(format_reader_table(table))
    if len(unmatched):
        print(f"{len(unmatched)} verdict(s) joined no success of this store (another text, checkpoint or attack "
              "key): not applied", file=sys.stderr)
    return 0


def _review(args: argparse.Namespace) -> int:
    from analysis.review import read_in_terminal, review_sample
    from attack_workers.results.store import ResultStore

    results = ResultStore(args.store)
    sample = review_sample(results.load_summary(), results.load_examples(), args.n, args.seed)
    read = read_in_terminal(sample, Path(args.out), args.reviewer)
    print(f"{read} verdict(s) written to {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from analysis.report import write_html

    print(write_html(args.store, args.out or Path(args.store).parent, review=args.review,
                     review_seed=args.review_seed, verdicts=args.verdicts))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"evaluate": _evaluate, "summary": _summary, "report": _report, "transfer": _transfer,
                "transfer-summary": _transfer_summary, "review": _review, "export": run_export,
                "import": run_import}[args.command](args)
    except (EvaluationError, UnknownProtocolError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
