"""Throughput of BERT-Attack: TextAttack's stock ``Attacker`` loop vs attack_workers, and pool scaling.

    ../shared/bin/offline .venv/bin/python benchmarks/attack_throughput.py          # ~10 min on 2 CPUs
    ... benchmarks/attack_throughput.py --checkpoint runs/x/best --num-examples 40 --scaling-examples 120

Part 1, on one checkpoint, the same MR dev examples and the same attack parameters
(``textattack`` protocol: NLTK stop words, at most 40% of words, similarity >= 0.2, greedy [UNK] WIR):

- ``stock``: ``textattack.Attacker`` with ``HuggingFaceModelWrapper`` and
  ``WordSwapMaskedLM(method="bert-attack")`` as shipped (every input padded to 512 tokens, K^n
  sub-token products), the local sentence encoder without de-duplication (as TextAttack calls its
  USE constraint), one thread;
- ``worker``: ``attack_workers.worker.AttackWorker`` in this process, one thread;
- ``pool``: the Ray pool with one one-CPU actor (model loading excluded everywhere).

K defaults to 8 there (textattack 0.3.11's recipe value): with K=48 the stock transformation's K^n
products make long words take minutes. Outcomes (status, adversarial text, queries) of the stock
loop and the worker are compared per example; a difference is attributed to where the candidate
sets differ by design (words of several sub-tokens; special tokens such as [SEP] proposed as
words) or reported as UNEXPLAINED. The pool must reproduce the worker's outcomes exactly.

Part 1 also times the in-process worker under the ``vda-paper`` protocol (the counter-fitted word
filter on) on the same examples, so the filter's cost sits next to the stock loop.

Part 2: the pool with 1 and 2 actors on more examples at the paper's K=48 under ``vda-paper``
(``--scaling-protocol``); same outcomes required.

Without ``--checkpoint`` a small MR checkpoint is fine-tuned once with ``vda.train`` (plain
fine-tuning, no VDA) into ``runs/bench-mr``. Exit status 1 if outcomes differ unexplained.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attack_workers.offline import import_textattack  # noqa: E402

import_textattack()

from attack_workers.evaluation import EvalConfig, plan_evaluation  # noqa: E402
from attack_workers.protocols import AttackParams  # noqa: E402
from attack_workers.shards import Shard  # noqa: E402
from attack_workers.store import ResultStore  # noqa: E402
from attack_workers.worker import AttackWorker, WorkerConfig  # noqa: E402


@dataclass
class Run:
    name: str
    workers: int
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of the attacking process(es): contention-free cost
    load: float  # 1-minute load average at the end (other users of the machine included)
    rows: dict[str, dict[str, Any]]  # example id -> status, perturbed_text, num_queries


def bench_checkpoint(directory: Path) -> Path:
    """A small plain fine-tuned MR checkpoint (trained once, then reused; a few minutes on 2 CPUs)."""
    best = directory / "best"
    if (best / "manifest.json").is_file():
        return best
    from vda.config import load_config
    from vda.train import fit

    print(f"training a benchmark checkpoint into {directory} (once)...", flush=True)
    cfg = load_config(overrides=["vda.lam=0", "lr=5e-5", "max_steps=250", "epochs=1", "data.max_eval_examples=200",
                                 "eval_test=false", "num_threads=2"])
    return fit(cfg, directory, progress=False).best_dir


def plan_shards(checkpoint: Path, num_examples: int, max_candidates: int, args: argparse.Namespace,
                store: Path, protocol: str = "textattack") -> list[Shard]:
    config = EvalConfig(store=str(store), protocol=protocol, num_examples=num_examples, seed=args.seed,
                        params=AttackParams(max_candidates=max_candidates), shard_size=args.shard_size)
    return plan_evaluation([str(checkpoint)], config, WorkerConfig(), ResultStore(store)).shards


def outcome(status: str, perturbed: str, queries: int) -> dict[str, Any]:
    return {"status": status, "perturbed_text": perturbed, "num_queries": int(queries)}


def run_stock(checkpoint: Path, shards: list[Shard], max_candidates: int) -> Run:
    """TextAttack's own loop and components (offline stand-in for USE: the same local encoder)."""
    import textattack
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.models.wrappers import HuggingFaceModelWrapper
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapMaskedLM

    from attack_workers.sentence_encoder import LocalSentenceEncoder, load_sentence_model
    from attack_workers.stopwords import NLTK_ENGLISH
    from vda.checkpoint import load_checkpoint
    from vda.mlm import load_mlm

    class PlainSentenceEncoder(LocalSentenceEncoder):
        """Encodes every sentence it is given, duplicates included, as TextAttack's USE constraint does."""

        def encode(self, sentences: list[str]) -> torch.Tensor:
            return self.encoder.encode(list(sentences), convert_to_tensor=True, show_progress_bar=False).cpu()

    model, tokenizer, _ = load_checkpoint(checkpoint)
    mlm, mlm_tokenizer = load_mlm("default")
    constraints = [RepeatModification(), StopwordModification(stopwords=set(NLTK_ENGLISH)),
                   MaxWordsPerturbed(max_percent=0.4), PlainSentenceEncoder(load_sentence_model("default"), 0.2)]
    transformation = WordSwapMaskedLM(method="bert-attack", masked_language_model=mlm, tokenizer=mlm_tokenizer,
                                      max_candidates=max_candidates)
    attack = textattack.Attack(UntargetedClassification(HuggingFaceModelWrapper(model, tokenizer)), constraints,
                               transformation, GreedyWordSwapWIR(wir_method="unk"))
    examples = [e for s in shards for e in s.examples]
    dataset = textattack.datasets.Dataset([(e.text_a, e.label) for e in examples])
    attacker = textattack.Attacker(attack, dataset, textattack.AttackArgs(num_examples=len(examples), silent=True,
                                                                          disable_stdout=True))
    start, cpu = time.perf_counter(), time.process_time()
    results = attacker.attack_dataset()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    status = {FailedAttackResult: "failed", SkippedAttackResult: "skipped"}
    rows = {e.id: outcome(status.get(type(r), "succeeded"), r.perturbed_result.attacked_text.text, r.num_queries)
            for e, r in zip(examples, results)}
    return Run("TextAttack stock Attacker loop", 1, seconds, cpu, os.getloadavg()[0], rows)


def rows_of(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["example_id"]: outcome(r["status"], r["perturbed_text"], r["num_queries"]) for r in results}


def run_worker(shards: list[Shard], name: str = "attack_workers AttackWorker (in process)") -> Run:
    worker = AttackWorker(WorkerConfig(num_threads=1))
    worker._attack_for(shards[0].target)  # load the classifier outside the timing, as the pool does
    start = time.perf_counter()
    results = [worker.attack_shard(shard) for shard in shards]
    rows = [row for result in results for row in result.rows]
    return Run(name, 1, time.perf_counter() - start,
               sum(r.cpu_seconds for r in results), os.getloadavg()[0], rows_of(rows))


def run_pool(shards: list[Shard], workers: int, store: Path) -> Run:
    from attack_workers.pool import AttackPool, PoolConfig

    rows: list[dict[str, Any]] = []
    cpu: list[float] = []
    results = ResultStore(store)

    def collect(shard: Shard, result: Any) -> None:
        rows.extend(result.rows)
        cpu.append(result.cpu_seconds)
        results.write_examples(result.rows)

    with AttackPool(WorkerConfig(), PoolConfig(num_workers=workers)) as pool:
        # Warm every actor on the checkpoint first so that the timing is attack throughput only.
        pool.run(shards[:workers], lambda *a: None, lambda *a: None, progress=False)
        start = time.perf_counter()
        pool.run(shards, collect, lambda shard, error, n: print(f"shard failed: {error}", file=sys.stderr),
                 progress=False)
        seconds = time.perf_counter() - start
    return Run(f"attack_workers Ray pool, {workers} actor(s)", workers, seconds, sum(cpu), os.getloadavg()[0],
               rows_of(rows))


def explain(example_text: str, stock: dict[str, Any], ours: dict[str, Any], tokenizer: Any) -> str:
    """Why the stock loop and ours differ on this example, if the difference is one they may have."""
    from textattack.shared import AttackedText

    words = AttackedText(example_text).words
    same_outcome = (stock["status"], stock["perturbed_text"]) == (ours["status"], ours["perturbed_text"])
    if same_outcome and stock["num_queries"] > ours["num_queries"] and any(w != w.lower() for w in words):
        return ("same outcome; stock also queries the lower-cased copy of a capitalized word "
                "(the same input to an uncased model)")
    pieces = [w for w in words if len(tokenizer.tokenize(w)) > 1]
    if pieces:
        return (f"multi-sub-token word(s) {pieces[:4]}: stock tries unranked K^n products joined into non-words, "
                "ours the 24 best-ranked combinations that spell one word")
    if any(t in stock["perturbed_text"].split() for t in ("SEP", "CLS", "UNK", "PAD", "MASK")):
        return "stock proposed a special token as a word"
    return "UNEXPLAINED"


def compare(stock: Run, ours: Run, shards: list[Shard]) -> list[str]:
    from vda.mlm import load_mlm

    _, tokenizer = load_mlm("default")
    texts = {e.id: e.text_a for s in shards for e in s.examples}
    lines = []
    for example_id, mine in ours.rows.items():
        theirs = stock.rows[example_id]
        if theirs != mine:
            reason = explain(texts[example_id], theirs, mine, tokenizer)
            lines.append(f"  {example_id}: stock {theirs['status']}/{theirs['num_queries']}q "
                         f"'{theirs['perturbed_text']}' vs ours {mine['status']}/{mine['num_queries']}q "
                         f"'{mine['perturbed_text']}' -- {reason}")
    return lines


def table(runs: list[Run]) -> str:
    """Markdown table; ratios are against the first row."""
    first = runs[0]
    one = next((r for r in runs if r.workers == 1 and "pool" in r.name), None)
    lines = ["| setup | workers | examples | wall s | examples/s | vs row 1 | vs row 1 per worker | vs 1 actor "
             "| CPU s/example | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        rate = len(run.rows) / run.seconds
        base = len(first.rows) / first.seconds
        scaling = f"{rate / (len(one.rows) / one.seconds):.2f}x" if one and "pool" in run.name else ""
        lines.append(f"| {run.name} | {run.workers} | {len(run.rows)} | {run.seconds:.1f} | {rate:.3f} | "
                     f"{rate / base:.2f}x | {rate / base / run.workers:.2f}x | {scaling} | "
                     f"{run.cpu_seconds / len(run.rows):.3f} | {run.load:.1f} |")
    return "\n".join(lines)


def run_pools(shards: list[Shard], worker_counts: tuple[int, ...], tmp: Path) -> list[Run]:
    import ray

    ray.init(num_cpus=max(worker_counts), include_dashboard=False, log_to_driver=False)
    try:
        runs = []
        for workers in worker_counts:
            runs.append(run_pool(shards, workers, tmp / f"pool{workers}-{len(shards)}"))
            print(f"{runs[-1].name}: {runs[-1].seconds:.0f}s, load {runs[-1].load:.1f}", flush=True)
        return runs
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to attack (default: train runs/bench-mr once)")
    parser.add_argument("--num-examples", type=int, default=40, help="examples of the stock comparison")
    parser.add_argument("--max-candidates", type=int, default=8, help="K of the stock comparison")
    parser.add_argument("--scaling-examples", type=int, default=120, help="examples of the 1 vs 2 actor runs")
    parser.add_argument("--scaling-candidates", type=int, default=48, help="K of the 1 vs 2 actor runs (paper: 48)")
    parser.add_argument("--scaling-protocol", default="vda-paper",
                        help="protocol of the 1 vs 2 actor runs (default: vda-paper, the word filter on)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-size", type=int, default=2)
    parser.add_argument("--only", choices=["all", "stock", "scaling"], default="all", help="run one part")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    checkpoint = args.checkpoint or bench_checkpoint(REPO / "runs" / "bench-mr")
    status = 0
    with tempfile.TemporaryDirectory(prefix="attack-bench-") as tmp:
        print(f"checkpoint {checkpoint}; load {os.getloadavg()[0]:.1f}", flush=True)
        if args.only != "scaling":
            status = compare_with_stock(checkpoint, args, Path(tmp))
        if args.only != "stock":
            status = scaling(checkpoint, args, Path(tmp)) or status
    return status


def compare_with_stock(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 1: stock loop, in-process worker, 1-actor pool on the same examples; 1 if outcomes differ unexplained."""
    shards = plan_shards(checkpoint, args.num_examples, args.max_candidates, args, tmp / "plan")
    print(f"\n## TextAttack's stock loop vs attack_workers: {args.num_examples} MR dev examples, "
          f"K={args.max_candidates}", flush=True)
    stock = run_stock(checkpoint, shards, args.max_candidates)
    print(f"{stock.name}: {stock.seconds:.0f}s, load {stock.load:.1f}", flush=True)
    worker = run_worker(shards)
    print(f"{worker.name}: {worker.seconds:.0f}s, load {worker.load:.1f}", flush=True)
    (pool,) = run_pools(shards, (1,), tmp)
    filtered = run_worker(plan_shards(checkpoint, args.num_examples, args.max_candidates, args, tmp / "plan-paper",
                                      "vda-paper"), "AttackWorker, vda-paper protocol (word filter on)")
    print("\n" + table([stock, worker, pool, filtered]) + "\n")
    print(f"pool vs in-process worker: {'identical' if pool.rows == worker.rows else 'DIFFERENT'} outcomes")
    differences = compare(stock, worker, shards)
    same_status = sum(stock.rows[i]["status"] == r["status"] for i, r in worker.rows.items())
    print(f"stock vs ours: {len(worker.rows) - len(differences)}/{len(worker.rows)} examples identical "
          f"(status, adversarial text, queries); same status on {same_status}/{len(worker.rows)}")
    print("\n".join(differences))
    return int(pool.rows != worker.rows or any("UNEXPLAINED" in d for d in differences))


def scaling(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 2: the pool with 1 and 2 actors; 1 if their outcomes differ."""
    print(f"\n## Scaling: {args.scaling_examples} MR dev examples, K={args.scaling_candidates}, "
          f"{args.scaling_protocol} protocol", flush=True)
    shards = plan_shards(checkpoint, args.scaling_examples, args.scaling_candidates, args, tmp / "plan2",
                         args.scaling_protocol)
    one, two = run_pools(shards, (1, 2), tmp)
    print("\n" + table([one, two]) + "\n")
    print(f"2 actors vs 1 actor: {'identical' if one.rows == two.rows else 'DIFFERENT'} outcomes")
    return int(one.rows != two.rows)


if __name__ == "__main__":
    sys.exit(main())
