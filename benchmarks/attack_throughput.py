"""Throughput of BERT-Attack: TextAttack's stock ``Attacker`` loop vs attack_workers, pool scaling, long inputs.

    ../shared/bin/offline .venv/bin/python benchmarks/attack_throughput.py          # ~15 min on 2 CPUs
    ... benchmarks/attack_throughput.py --checkpoint runs/x/best --num-examples 16 --rounds 3

Every part times the setups it compares in alternating rounds (``benchmarks/rounds.py``): each
round runs every setup once on the same examples, a ratio is taken within its round, and the
tables give the median ratio over rounds with its min-max. Outcomes must be identical in every
round (the attack is deterministic).

Part 1, on one checkpoint, the same MR dev examples and the same attack parameters
(``textattack`` protocol: NLTK stop words, at most 40% of words, similarity >= 0.2, greedy [UNK] WIR):

- ``stock``: ``textattack.Attacker`` with ``HuggingFaceModelWrapper`` and
  ``WordSwapMaskedLM(method="bert-attack")`` as shipped (every input padded to 512 tokens, K^n
  sub-token products), the local sentence encoder without de-duplication (as TextAttack calls its
  USE constraint), one thread;
- ``worker``: ``attack_workers.runtime.worker.AttackWorker`` in this process, one thread;
- ``pool``: the Ray pool with one one-CPU actor (model loading excluded everywhere);
- the in-process worker under the ``vda-paper`` protocol (the counter-fitted word filter on).

K defaults to 8 there (textattack 0.3.11's recipe value): with K=48 the stock transformation's K^n
products make long words take minutes. Outcomes (status, adversarial text, queries) of the stock
loop and the worker are compared per example; a difference is attributed to where the candidate
sets differ by design (words of several sub-tokens; special tokens such as [SEP] proposed as
words) or reported as UNEXPLAINED. The pool must reproduce the worker's outcomes exactly.

Part 1b (``--only recipes``): TextFooler and PWWS, the stock loop over the same recipe parts
(``StockRecipeLoop``: TextAttack's stock recipes download USE, their vectors and taggers, so their
offline stand-ins take those places) against the in-process worker, ``textattack`` protocol.
Part 1c (``--only union``): the three attacks run in full against ``skip_broken`` (union only),
``vda-paper`` protocol, K=48; the union's outcome must be identical.

Part 2: the pool with 1 and 2 actors on more examples at the paper's K=48 under ``vda-paper``
(``--scaling-protocol``); same outcomes required. Both pools stay up (Ray is given 3 logical
CPUs for them on a 2-core machine; only one pool attacks at a time).

Part 3: long inputs. IMDb-length texts (MR dev reviews joined until ~745 words; no IMDb data is
available offline) attacked on the same checkpoint, trained at ``max_length`` 64, with the model
wrapper's memo (a query whose truncated input was seen runs no forward pass) against the same
wrapper running the model once per query, as it did before the memo; same outcomes and query
counts required.

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

from attack_workers.attack.offline import import_textattack  # noqa: E402

import_textattack()

from attack_workers.runtime.evaluation import EvalConfig, plan_evaluation  # noqa: E402
from attack_workers.attack.model_wrapper import DynamicPaddingModelWrapper  # noqa: E402
from attack_workers.attack.protocols import AttackParams  # noqa: E402
from attack_workers.runtime.shards import Shard  # noqa: E402
from attack_workers.results.store import ResultStore  # noqa: E402
from attack_workers.runtime.worker import AttackWorker, WorkerConfig  # noqa: E402
from benchmarks.rounds import ratio_spread  # noqa: E402


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
                store: Path, protocol: str = "textattack", attacks: tuple[str, ...] = ("bert-attack",),
                skip_broken: bool = False) -> list[Shard]:
    config = EvalConfig(store=str(store), protocol=protocol, num_examples=num_examples, seed=args.seed,
                        params=AttackParams(max_candidates=max_candidates), shard_size=args.shard_size,
                        attacks=attacks, skip_broken=skip_broken)
    return plan_evaluation([str(checkpoint)], config, WorkerConfig(), ResultStore(store)).shards


def outcome(status: str, perturbed: str, queries: int) -> dict[str, Any]:
    return {"status": status, "perturbed_text": perturbed, "num_queries": int(queries)}


class StockLoop:
    """TextAttack's own loop and components (offline stand-in for USE: the same local encoder), built once."""

    name = "TextAttack stock Attacker loop"

    def __init__(self, checkpoint: Path, max_candidates: int) -> None:
        import textattack
        from textattack.constraints.overlap import MaxWordsPerturbed
        from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
        from textattack.goal_functions import UntargetedClassification
        from textattack.models.wrappers import HuggingFaceModelWrapper
        from textattack.search_methods import GreedyWordSwapWIR
        from textattack.transformations import WordSwapMaskedLM

        from attack_workers.attack.sentence_encoder import LocalSentenceEncoder, load_sentence_model
        from attack_workers.lexicon.stopwords import NLTK_ENGLISH
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
        self.attack = textattack.Attack(UntargetedClassification(HuggingFaceModelWrapper(model, tokenizer)),
                                        constraints, transformation, GreedyWordSwapWIR(wir_method="unk"))

    def __call__(self, shards: list[Shard]) -> Run:
        import textattack
        from textattack.attack_results import FailedAttackResult, SkippedAttackResult

        examples = [e for s in shards for e in s.examples]
        dataset = textattack.datasets.Dataset([(e.text_a, e.label) for e in examples])
        attacker = textattack.Attacker(self.attack, dataset, textattack.AttackArgs(
            num_examples=len(examples), silent=True, disable_stdout=True))
        start, cpu = time.perf_counter(), time.process_time()
        results = attacker.attack_dataset()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        status = {FailedAttackResult: "failed", SkippedAttackResult: "skipped"}
        rows = {e.id: outcome(status.get(type(r), "succeeded"), r.perturbed_result.attacked_text.text, r.num_queries)
                for e, r in zip(examples, results)}
        return Run(self.name, 1, seconds, cpu, os.getloadavg()[0], rows)


def rows_of(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["example_id"]: outcome(r["status"], r["perturbed_text"], r["num_queries"]) for r in results}


class InProcessWorker:
    """``AttackWorker`` in this process, one thread; the classifier is loaded before the first timing."""

    def __init__(self, name: str, target_shards: list[Shard], worker: AttackWorker | None = None) -> None:
        self.name = name
        self.worker = worker or AttackWorker(WorkerConfig(num_threads=1))
        for target in {s.target.attack_key: s.target for s in target_shards}.values():
            self.worker._attack_for(target)  # load the classifier outside the timing, as the pool does

    def __call__(self, shards: list[Shard]) -> Run:
        start = time.perf_counter()
        results = [self.worker.attack_shard(shard) for shard in shards]
        rows = [row for result in results for row in result.rows]
        return Run(self.name, 1, time.perf_counter() - start, sum(r.cpu_seconds for r in results),
                   os.getloadavg()[0], rows_of(rows))


class PoolRun:
    """The Ray pool with ``workers`` actors, every actor warmed on the checkpoint before the first timing."""

    def __init__(self, workers: int, warm: list[Shard], store: Path) -> None:
        from attack_workers.runtime.pool import AttackPool, PoolConfig

        self.name, self.workers = f"attack_workers Ray pool, {workers} actor(s)", workers
        self.store = ResultStore(store)
        self.pool = AttackPool(WorkerConfig(), PoolConfig(num_workers=workers))
        self.pool.run(warm[:workers], lambda *a: None, lambda *a: None, progress=False)

    def __call__(self, shards: list[Shard]) -> Run:
        rows: list[dict[str, Any]] = []
        cpu: list[float] = []

        def collect(shard: Shard, result: Any) -> None:
            rows.extend(result.rows)
            cpu.append(result.cpu_seconds)
            self.store.write_examples(result.rows)

        start = time.perf_counter()
        self.pool.run(shards, collect, lambda shard, error, n: print(f"shard failed: {error}", file=sys.stderr),
                      progress=False)
        return Run(self.name, self.workers, time.perf_counter() - start, sum(cpu), os.getloadavg()[0], rows_of(rows))

    def close(self) -> None:
        self.pool.shutdown()


def in_rounds(setups: list[Any], shards: list[Shard], rounds: int) -> list[list[Run]]:
    """Round r attacks every r-th shard with every setup, back to back: [round][setup] runs.

    Each round has its own examples, so no setup meets a text its caches (TextAttack's query
    cache, the wrapper's memo) saw in an earlier round; within a round all setups do the same work.
    """
    parts = [shards[r::rounds] for r in range(rounds)]
    out = []
    for r, part in enumerate(parts):
        runs = [setup(part) for setup in setups]
        out.append(runs)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{run.name} {run.seconds:.1f}s" for run in runs), flush=True)
    return out


def merged(runs: list[Run]) -> Run:
    """One setup's runs of all rounds as one run (summed times, all rows, the last load average)."""
    rows = {k: v for run in runs for k, v in run.rows.items()}
    return Run(runs[0].name, runs[0].workers, sum(r.seconds for r in runs), sum(r.cpu_seconds for r in runs),
               runs[-1].load, rows)


def rate(run: Run) -> float:
    return len(run.rows) / run.seconds


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


def table(by_round: list[list[Run]], base: int = 0, per_worker_base: int | None = None) -> str:
    """Markdown table over rounds; ratios are per round against setup ``base`` (and, for pools, the 1-actor pool)."""
    names = range(len(by_round[0]))
    lines = ["| setup | workers | examples | wall s | examples/s | vs row 1 | vs row 1 per worker | vs 1 actor "
             "| CPU s/example | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i in names:
        runs = [rnd[i] for rnd in by_round]
        total = merged(runs)
        vs_base = ratio_spread([rate(r) for r in runs], [rate(rnd[base]) for rnd in by_round])
        per_worker = ratio_spread([rate(r) / r.workers for r in runs], [rate(rnd[base]) for rnd in by_round])
        scaling = "" if per_worker_base is None else ratio_spread(
            [rate(r) for r in runs], [rate(rnd[per_worker_base]) for rnd in by_round]).text()
        lines.append(f"| {total.name} | {total.workers} | {len(total.rows)} | {total.seconds:.1f} | {rate(total):.3f} | "
                     f"{vs_base.text()} | {per_worker.text()} | {scaling} | "
                     f"{total.cpu_seconds / len(total.rows):.3f} | {total.load:.1f} |")
    return "\n".join(lines) + f"\n\nratios: median (min-max) over {len(by_round)} rounds, each on its own examples"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to attack (default: train runs/bench-mr once)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every part")
    parser.add_argument("--num-examples", type=int, default=48, help="examples of the stock comparison (all rounds)")
    parser.add_argument("--max-candidates", type=int, default=8, help="K of the stock comparison")
    parser.add_argument("--scaling-examples", type=int, default=120, help="examples of the 1 vs 2 actor runs")
    parser.add_argument("--scaling-candidates", type=int, default=48, help="K of the 1 vs 2 actor runs (paper: 48)")
    parser.add_argument("--scaling-protocol", default="vda-paper",
                        help="protocol of the 1 vs 2 actor runs (default: vda-paper, the word filter on)")
    parser.add_argument("--long-examples", type=int, default=4, help="IMDb-length texts of the long-input part")
    parser.add_argument("--long-words", type=int, default=745, help="words per long text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-size", type=int, default=2)
    parser.add_argument("--recipe-examples", type=int, default=24,
                        help="examples of the per-attack stock comparison (textfooler, pwws) and the union part")
    parser.add_argument("--only", choices=["all", "stock", "recipes", "union", "scaling", "long"], default="all",
                        help="run one part")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    checkpoint = args.checkpoint or bench_checkpoint(REPO / "runs" / "bench-mr")
    status = 0
    import ray

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="attack-bench-") as tmp:
            print(f"checkpoint {checkpoint}; load {os.getloadavg()[0]:.1f}", flush=True)
            if args.only in ("all", "stock"):
                status = compare_with_stock(checkpoint, args, Path(tmp)) or status
            if args.only in ("all", "recipes"):
                status = compare_recipes_with_stock(checkpoint, args, Path(tmp)) or status
            if args.only in ("all", "union"):
                status = union_cost(checkpoint, args, Path(tmp)) or status
            if args.only in ("all", "scaling"):
                status = scaling(checkpoint, args, Path(tmp)) or status
            if args.only in ("all", "long"):
                status = long_inputs(checkpoint, args, Path(tmp)) or status
    finally:
        ray.shutdown()
    return status


def compare_with_stock(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 1: stock loop, in-process worker, 1-actor pool, filtered worker; 1 if outcomes differ unexplained."""
    shards = plan_shards(checkpoint, args.num_examples, args.max_candidates, args, tmp / "plan")
    paper = {s.shard_id: s for s in plan_shards(checkpoint, args.num_examples, args.max_candidates, args,
                                                 tmp / "plan-paper", "vda-paper")}
    print(f"\n## TextAttack's stock loop vs attack_workers: {args.num_examples} MR dev examples, "
          f"K={args.max_candidates}, {args.rounds} rounds", flush=True)
    worker = InProcessWorker("attack_workers AttackWorker (in process)", shards)
    filtered = InProcessWorker("AttackWorker, vda-paper protocol (word filter on)", list(paper.values()))
    pool = PoolRun(1, shards, tmp / "pool1")
    try:
        by_round = in_rounds([StockLoop(checkpoint, args.max_candidates), worker, pool,
                              lambda part: filtered(_same_examples(part, list(paper.values())))],
                             shards, args.rounds)
    finally:
        pool.close()
    print("\n" + table(by_round) + "\n")
    stock, ours, pooled = (merged([rnd[i] for rnd in by_round]) for i in range(3))
    print(f"pool vs in-process worker: {'identical' if pooled.rows == ours.rows else 'DIFFERENT'} outcomes")
    differences = compare(stock, ours, shards)
    same_status = sum(stock.rows[i]["status"] == r["status"] for i, r in ours.rows.items())
    print(f"stock vs ours: {len(ours.rows) - len(differences)}/{len(ours.rows)} examples identical "
          f"(status, adversarial text, queries); same status on {same_status}/{len(ours.rows)}")
    print("\n".join(differences))
    return int(pooled.rows != ours.rows or any("UNEXPLAINED" in d for d in differences))


class StockRecipeLoop:
    """TextAttack's ``Attacker`` loop over one recipe's parts as TextAttack ships them, where they are offline.

    The stock TextFooler and PWWS recipes download USE, GloVe-counter-fitted vectors, NLTK's tagger and
    omw-1.4. This loop keeps what makes the stock loop stock (``HuggingFaceModelWrapper`` padding every
    query to 512 tokens, TextAttack's ``StopwordModification``, the sentence encoder called on every
    copy of the original) and takes offline stand-ins of the same algorithms for the rest:
    textfooler: ``WordSwapEmbedding(max_candidates=50)`` over the project's counter-fitted vectors,
    ``WordEmbeddingDistance(0.5)``, the project's part-of-speech check, MiniLM for USE
    (angular, window 15), ``GreedyWordSwapWIR("delete")``; pwws: the project's WordNet synonyms
    (the same lemmas as ``WordSwapWordNet``), ``GreedyWordSwapWIR("weighted-saliency")``. Both
    under the textattack protocol's rules (NLTK stop words, 40 % of the words, whole-text cosine >= 0.2).
    """

    def __init__(self, checkpoint: Path, attack: str, backbones: Any) -> None:
        import textattack
        from textattack.constraints.overlap import MaxWordsPerturbed
        from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
        from textattack.constraints.semantics import WordEmbeddingDistance
        from textattack.goal_functions import UntargetedClassification
        from textattack.models.wrappers import HuggingFaceModelWrapper
        from textattack.search_methods import GreedyWordSwapWIR
        from textattack.transformations import WordSwapEmbedding

        from attack_workers.attack.sentence_encoder import LocalSentenceEncoder
        from attack_workers.attack.word_swaps import PartOfSpeechConsistency, WordNetSynonymSwap
        from attack_workers.lexicon.stopwords import NLTK_ENGLISH
        from attack_workers.lexicon.tagger import Tagger
        from vda.checkpoint import load_checkpoint

        class PlainSentenceEncoder(LocalSentenceEncoder):
            """Encodes every sentence it is given, duplicates included, as TextAttack's USE constraint does."""

            def encode(self, sentences: list[str]) -> torch.Tensor:
                return self.encoder.encode(list(sentences), convert_to_tensor=True, show_progress_bar=False).cpu()

        self.name = f"TextAttack stock Attacker loop, {attack}"
        model, tokenizer, _ = load_checkpoint(checkpoint)
        constraints = [RepeatModification(), StopwordModification(stopwords=set(NLTK_ENGLISH)),
                       MaxWordsPerturbed(max_percent=0.4), PlainSentenceEncoder(backbones.sentence_model, 0.2)]
        if attack == "textfooler":
            # its own embedding and tagger objects: their caches must not warm the worker's (or back)
            embedding = stock_embedding(backbones.lexicon, 50)
            transformation = WordSwapEmbedding(max_candidates=50, embedding=embedding)
            constraints += [WordEmbeddingDistance(embedding, min_cos_sim=0.5),
                            PartOfSpeechConsistency(Tagger()),
                            PlainSentenceEncoder(backbones.sentence_model, 0.840845057, window_size=15,
                                                 metric="angular", compare_against_original=False,
                                                 skip_text_shorter_than_window=True)]
            search = GreedyWordSwapWIR(wir_method="delete")
        else:
            transformation = WordNetSynonymSwap()
            search = GreedyWordSwapWIR(wir_method="weighted-saliency")
        self.attack = textattack.Attack(UntargetedClassification(HuggingFaceModelWrapper(model, tokenizer)),
                                        constraints, transformation, search)

    def __call__(self, shards: list[Shard]) -> Run:
        return StockLoop.__call__(self, shards)  # the same Attacker loop


def stock_embedding(lexicon: Any, k: int) -> Any:
    """The lexicon as the stock recipe's ``WordEmbedding``: with a precomputed nearest-neighbour matrix, as
    TextAttack's downloaded counter-fitted embedding has (its on-the-fly path is broken in 0.3.11:
    ``dist.topk(...)[1:]`` slices the (values, indices) tuple)."""
    import numpy as np
    from textattack.shared import WordEmbedding

    vectors = np.asarray(lexicon.vectors, dtype=np.float32)
    nn = np.empty((len(vectors), k + 1), dtype=np.int64)
    for start in range(0, len(vectors), 2048):
        cos = vectors[start:start + 2048] @ vectors.T
        top = np.argpartition(-cos, k, axis=1)[:, :k + 1]
        order = np.argsort(-np.take_along_axis(cos, top, axis=1), axis=1, kind="stable")
        nn[start:start + 2048] = np.take_along_axis(top, order, axis=1)  # the word itself first
    return WordEmbedding(vectors, dict(lexicon.index), dict(enumerate(lexicon.words)), nn_matrix=nn)


def compare_recipes_with_stock(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 1b: per attack (textfooler, pwws), the stock loop vs the in-process worker, textattack protocol."""
    from attack_workers.lexicon.relations import is_english_word

    worker = AttackWorker(WorkerConfig(num_threads=1))
    is_english_word("warm")  # loads WordNet (15 s), which both setups use: model loading is excluded everywhere
    for attack in ("textfooler", "pwws"):
        shards = plan_shards(checkpoint, args.recipe_examples, args.max_candidates, args, tmp / f"plan-{attack}",
                             attacks=(attack,))
        print(f"\n## {attack}: TextAttack's stock loop vs attack_workers, {args.recipe_examples} MR dev examples, "
              f"textattack protocol, {args.rounds} rounds", flush=True)
        ours = InProcessWorker(f"attack_workers AttackWorker (in process), {attack}", shards, worker)
        by_round = in_rounds([StockRecipeLoop(checkpoint, attack, worker.backbones), ours], shards, args.rounds)
        print("\n" + table(by_round) + "\n")
        stock, mine = (merged([rnd[i] for rnd in by_round]) for i in range(2))
        same = sum(stock.rows[i]["status"] == r["status"] for i, r in mine.rows.items())
        identical = sum(stock.rows[i] == r for i, r in mine.rows.items())
        print(f"stock vs ours: same status on {same}/{len(mine.rows)}, identical (status, text, queries) on "
              f"{identical}/{len(mine.rows)}; differences come from the rules every attack shares here (no "
              "number, negation or un-/in- swap, real words only, case-insensitive stop words)")
    return 0


def union_cost(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 1c: the three attacks one after the other vs ``skip_broken`` (union only), vda-paper protocol."""
    attacks = ("bert-attack", "textfooler", "pwws")
    full = plan_shards(checkpoint, args.recipe_examples, 48, args, tmp / "plan-union", "vda-paper", attacks)
    fast = plan_shards(checkpoint, args.recipe_examples, 48, args, tmp / "plan-union-fast", "vda-paper", attacks,
                       skip_broken=True)
    from attack_workers.lexicon.relations import is_english_word

    is_english_word("warm")  # loads WordNet outside the timings
    print(f"\n## The union's cost: {args.recipe_examples} MR dev examples, K=48, vda-paper, every attack vs "
          f"skip_broken, {args.rounds} rounds", flush=True)

    def every_attack(part: list[Shard]) -> Run:
        ids = {e.id for s in part for e in s.examples}
        run = ours_full([s for s in full if any(e.id in ids for e in s.examples)])
        run.rows = _union_outcomes(run.rows)
        return run

    def union_only(part: list[Shard]) -> Run:
        ids = {e.id for s in part for e in s.examples}
        run = ours_fast([s for s in fast if any(e.id in ids for e in s.examples)])
        run.rows = _union_outcomes(run.rows)
        return run

    # two workers: the victim's memo and TextAttack's caches of one must not serve the other's queries
    ours_full = _RowsWorker("AttackWorker, all three attacks", full)
    ours_fast = _RowsWorker("AttackWorker, three attacks, skip_broken", fast)
    every_attack.name, union_only.name = ours_full.name, ours_fast.name  # type: ignore[attr-defined]
    # rounds over the first attack's shards: each round's examples, every attack of them
    by_round = in_rounds([every_attack, union_only], [s for s in full if s.target.attack == "bert-attack"],
                         args.rounds)
    print("\n" + table(by_round) + "\n")
    slow, quick = (merged([rnd[i] for rnd in by_round]) for i in range(2))
    print(f"union outcome, every attack vs skip_broken: {'identical' if slow.rows == quick.rows else 'DIFFERENT'}")
    return int(slow.rows != quick.rows)


class _RowsWorker(InProcessWorker):
    """An in-process worker that keeps the raw rows (every attack's), for the union part."""

    def __call__(self, shards: list[Shard]) -> Run:
        start = time.perf_counter()
        results = [self.worker.attack_shard(shard) for shard in shards]
        rows = {f"{r['example_id']}/{r['attack']}": r for result in results for r in result.rows}
        return Run(self.name, 1, time.perf_counter() - start, sum(r.cpu_seconds for r in results),
                   os.getloadavg()[0], rows)


def _union_outcomes(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Example id -> union status (succeeded if any attack broke it)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows.values():
        status = out.setdefault(row["example_id"], {"status": row["status"]})
        if row["status"] == "succeeded":
            status["status"] = "succeeded"
    return out


def _same_examples(part: list[Shard], others: list[Shard]) -> list[Shard]:
    """The shards of ``others`` holding the examples of ``part`` (another protocol's plan of the same examples)."""
    wanted = {e.id for s in part for e in s.examples}
    return [s for s in others if any(e.id in wanted for e in s.examples)]


def scaling(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 1b (``--only recipes``): TextFooler and PWWS, the stock loop over the same recipe parts
(``StockRecipeLoop``: TextAttack's stock recipes download USE, their vectors and taggers, so their
offline stand-ins take those places) against the in-process worker, ``textattack`` protocol.
Part 1c (``--only union``): the three attacks run in full against ``skip_broken`` (union only),
``vda-paper`` protocol, K=48; the union's outcome must be identical.

Part 2: the pool with 1 and 2 actors, alternating; 1 if their outcomes differ."""
    print(f"\n## Scaling: {args.scaling_examples} MR dev examples, K={args.scaling_candidates}, "
          f"{args.scaling_protocol} protocol, {args.rounds} rounds", flush=True)
    shards = plan_shards(checkpoint, args.scaling_examples, args.scaling_candidates, args, tmp / "plan2",
                         args.scaling_protocol)
    pools = [PoolRun(n, shards, tmp / f"scaling{n}") for n in (1, 2)]
    try:
        by_round = in_rounds(pools, shards, args.rounds)
    finally:
        for pool in pools:
            pool.close()
    print("\n" + table(by_round, per_worker_base=0) + "\n")
    one, two = (merged([rnd[i] for rnd in by_round]) for i in range(2))
    print(f"2 actors vs 1 actor: {'identical' if one.rows == two.rows else 'DIFFERENT'} outcomes")
    return int(one.rows != two.rows)


def long_inputs(checkpoint: Path, args: argparse.Namespace, tmp: Path) -> int:
    """Part 3: IMDb-length texts with the wrapper's memo vs one forward pass per query; 1 if outcomes differ."""
    import dataclasses

    from attack_workers.attack import model_wrapper

    # MR reviews average ~17 words: ask for enough of them to fill every long text
    base = plan_shards(checkpoint, args.long_examples * args.long_words // 12, args.max_candidates, args,
                       tmp / "plan-long")
    pieces = [e.text_a for s in base for e in s.examples]
    texts = _long_texts(pieces, args.long_examples, args.long_words)
    examples = [dataclasses.replace(e, text_a=t) for e, t in zip((e for s in base for e in s.examples), texts)]
    shards = [dataclasses.replace(base[0], shard_id=f"long-{i}", examples=[e]) for i, e in enumerate(examples)]
    print(f"\n## Long inputs: {len(shards)} texts of {args.long_words} words (MR dev reviews joined), "
          f"K={args.max_candidates}, textattack protocol, classifier max_length {shards[0].target.max_length}, "
          f"{args.rounds} rounds", flush=True)
    memo = InProcessWorker("AttackWorker, wrapper memo", shards)
    original = model_wrapper.DynamicPaddingModelWrapper
    model_wrapper.DynamicPaddingModelWrapper = PerQueryWrapper  # the worker builds its wrapper from the module
    try:
        per_query = InProcessWorker("AttackWorker, one forward pass per query", shards)
    finally:
        model_wrapper.DynamicPaddingModelWrapper = original
    by_round = in_rounds([per_query, memo], shards, args.rounds)
    print("\n" + table(by_round) + "\n")
    slow, fast = (merged([rnd[i] for rnd in by_round]) for i in range(2))
    queries = sum(r["num_queries"] for r in fast.rows.values()) / len(fast.rows)
    print(f"mean queries per example {queries:.0f}; forward passes: {per_query.worker._wrapper.forward_inputs} "
          f"one per query vs {memo.worker._wrapper.forward_inputs} with the memo")
    print(f"memo vs one pass per query: {'identical' if slow.rows == fast.rows else 'DIFFERENT'} outcomes")
    return int(slow.rows != fast.rows)


def _long_texts(pieces: list[str], count: int, words: int) -> list[str]:
    """``count`` texts of ``words`` words, each MR reviews joined in order (every text its own reviews)."""
    texts, current = [], []
    for piece in pieces:
        current += piece.split()
        if len(current) >= words:
            texts.append(" ".join(current[:words]))
            current = []
            if len(texts) == count:
                return texts
    raise SystemExit(f"not enough MR dev text for {count} texts of {words} words (the checkpoint caps its dev "
                     "split at data.max_eval_examples); lower --long-examples or --long-words")


class PerQueryWrapper(DynamicPaddingModelWrapper):
    """The wrapper as it was before its memo: the model runs once per query (in batches)."""

    def __call__(self, text_input_list: Any) -> torch.Tensor:
        encodings = self._encode(list(text_input_list))
        return torch.cat([self._logits(encodings[i:i + self.batch_size])
                          for i in range(0, len(encodings), self.batch_size)])


if __name__ == "__main__":
    sys.exit(main())
