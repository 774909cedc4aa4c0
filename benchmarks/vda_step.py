"""Time per optimizer step and peak memory: plain fine-tuning vs VDA, same model, batch and length.

    python benchmarks/vda_step.py                                  # CPU default: packaged MiniLM, B=16, L=64
    python benchmarks/vda_step.py --arch bert-base --batch-size 32 --seq-len 128 --precision bf16  # GPU

Each configuration runs in its own process, kept alive and warm, so that peak memory (CUDA max
allocated, or the process's max RSS on CPU) belongs to that configuration alone. Each VDA row is
timed in rounds alternating with the plain row (plain, VDA, plain, VDA...; ``benchmarks/rounds.py``),
and its ratio to plain is the median over rounds with the min-max, so the machine's drift stays out
of it. A step is forward + backward + AdamW step. The floor for VDA is (k+1) x a plain step (one
extra forward/backward per virtual sample); the ``aug ms`` column is the frozen MLM pass + mixing
alone, which is most of the rest. Sharp mode is measured twice: with the MLM scoring every batch
(``paper``/``code`` always, ``sharp`` without a table) and with the batch's candidates in a
candidate table (``vda.candidates``: what every sharp trial uses, in every epoch), where the MLM
does not run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rounds import Server, Spread, alternate, ratio_spread, serve, spread  # noqa: E402

ARCHS = {"default": None, "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                             intermediate_size=3072)}


def build(arch: str, device: str):
    """Classifier + frozen MLM: the packaged MiniLM (default) or a randomly initialised BERT-base."""
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForMaskedLM, \
        BertForSequenceClassification

    from vda.mlm import load_mlm, resolve_model_path

    if arch == "default":
        clf = AutoModelForSequenceClassification.from_pretrained(resolve_model_path("default"), num_labels=2)
        mlm, _ = load_mlm("default")
    else:
        cfg = BertConfig(vocab_size=30522, num_labels=2, **ARCHS[arch])
        clf, mlm = BertForSequenceClassification(cfg), BertForMaskedLM(cfg).eval().requires_grad_(False)
    return clf.to(device).train(), mlm.to(device)


class StepBench:
    """One configuration, built once in its own process: times ``steps`` optimizer steps on request."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from vda.augment import VirtualAugmenter
        from vda.config import StrategyConfig, VDAConfig
        from vda.objective import StepContext, VDATerm
        from vda.strategies import get_strategy

        torch.manual_seed(0)
        self.args, device = args, args.device
        self.clf, mlm = build(args.arch, device)
        vcfg = VDAConfig(mode=args.mode, k=args.k, lam=0.0 if args.k == 0 else 1.0,
                         sigma=1.0 if args.mode == "sharp" else 1e-2)
        self.aug = VirtualAugmenter(mlm, vcfg)
        ids = torch.randint(1000, 30000, (args.batch_size, args.seq_len), device=device)
        ids[:, 0], ids[:, -1] = 101, 102
        self.batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                      "token_type_ids": torch.zeros_like(ids),
                      "labels": torch.randint(0, 2, (args.batch_size,), device=device)}
        self.keys = list(range(args.batch_size)) if args.cached else None
        if args.cached:  # the batch's rows of a candidate table, as a trial loads them (vda.candidates)
            self.aug.table = _table_of(self.aug, self.batch)
            self.batch["example_index"] = torch.tensor(self.keys)  # on the CPU, as vda.batching.collate leaves it
        self.opt = torch.optim.AdamW(self.clf.parameters(), lr=1e-5, fused=True)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        self.autocast = lambda: torch.autocast(device.split(":")[0], dtype=amp or torch.float32,
                                               enabled=amp is not None)
        self.ctx = StepContext(StrategyConfig(name=args.strategy), VDATerm(self.aug, vcfg) if args.k else None,
                               autocast=self.autocast)
        self.step_fn = get_strategy(args.strategy)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.warmup):
            self.step()
        self.sync()

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.step_fn(self.clf, self.batch, self.ctx)
        self.opt.step()

    def augment(self) -> None:
        with self.autocast():
            self.aug(self.batch["input_ids"], self.batch["attention_mask"], self.args.k,
                     self.batch["token_type_ids"], keys=self.keys)

    def timed(self, fn, n: int) -> float:
        self.sync()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        self.sync()
        return (time.perf_counter() - start) / n * 1000

    def measure(self, _: list[str]) -> dict:
        """One round: ``steps`` optimizer steps, then (VDA rows) ``steps`` augmentations alone."""
        step_ms = self.timed(self.step, self.args.steps)
        aug_ms = self.timed(self.augment, self.args.steps) if self.args.k else 0.0
        return {"step_ms": step_ms, "aug_ms": aug_ms}

    def peak(self, _: list[str]) -> dict:
        import torch

        peak = (torch.cuda.max_memory_allocated() if self.args.device.startswith("cuda")
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return {"peak_mib": peak / 2**20}

    def label(self) -> str:
        return (f"{self.args.mode}, table" if self.args.cached else self.args.mode) if self.args.k else "-"


def _table_of(aug, batch: dict):
    """A candidate table holding exactly this batch's examples (keys 0..B-1)."""
    import numpy as np

    from vda.candidates import CandidateTable

    scored = aug.score(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    lengths = batch["attention_mask"].sum(dim=1).cpu().numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return CandidateTable(offsets, scored.indices.cpu().numpy().astype(np.int32), scored.scores.float().cpu().numpy())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS), default="default")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="steps per configuration per round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of plain and each VDA row")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ks", default="1,2,3")
    p.add_argument("--modes", default="sharp,paper,code")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--device", default=None, help="cuda when a GPU is visible, else cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--strategy", default="plain", help="base strategy of every row (plain, freelb, smart, smix)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # internal: one configuration's process
    p.add_argument("--k", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="sharp", help=argparse.SUPPRESS)
    p.add_argument("--cached", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = p.parse_args()
    args.device = args.device or ("cuda" if _has_cuda() else "cpu")
    if args.serve:
        import torch

        torch.set_num_threads(args.threads)
        bench = StepBench(args)
        serve({"measure": bench.measure, "peak": bench.peak}, {"mode": bench.label(), "k": args.k})
        return
    ks, modes = list(map(int, args.ks.split(","))), args.modes.split(",")
    configs = [(k, m, False) for m in modes for k in ks]
    configs += [(k, "sharp", True) for k in ks] if "sharp" in modes else []
    rows = measure_alternating(configs, args)
    _print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _server(args: argparse.Namespace, k: int, mode: str, cached: bool) -> Server:
    return Server([sys.executable, __file__, "--serve", f"--k={k}", f"--mode={mode}"] + ["--cached"] * cached
                  + _passthrough(args))


def measure_alternating(configs: list[tuple[int, str, bool]], args: argparse.Namespace) -> list[dict]:
    """The plain row, then each VDA row timed in rounds alternating with plain (both processes warm)."""
    with _server(args, 0, "sharp", False) as plain:
        plain_ms: list[float] = []
        rows = []
        for k, mode, cached in configs:
            with _server(args, k, mode, cached) as vda:
                times = alternate({"plain": lambda: plain.request("measure")["step_ms"],
                                   "vda": lambda: vda.request("measure")}, args.rounds)
                vda_ms = [t["step_ms"] for t in times["vda"]]
                plain_ms += times["plain"]
                rows.append({**vda.hello, "step_ms": spread(vda_ms).median,
                             "aug_ms": spread([t["aug_ms"] for t in times["vda"]]).median,
                             "x_plain": ratio_spread(vda_ms, times["plain"]).__dict__,
                             **vda.request("peak")})
                print(f"  measured {rows[-1]}", file=sys.stderr)
        plain_row = {**plain.hello, "step_ms": spread(plain_ms).median, "aug_ms": 0.0,
                     "x_plain": spread([1.0]).__dict__, **plain.request("peak")}
    return [plain_row] + rows


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _passthrough(args: argparse.Namespace) -> list[str]:
    return [f"--arch={args.arch}", f"--batch-size={args.batch_size}", f"--seq-len={args.seq_len}",
            f"--steps={args.steps}", f"--warmup={args.warmup}", f"--precision={args.precision}",
            f"--device={args.device}", f"--threads={args.threads}", f"--strategy={args.strategy}"]


def _print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.arch} strategy={args.strategy} B={args.batch_size} L={args.seq_len} {args.precision} on "
          f"{args.device} ({args.threads} threads where CPU); {args.rounds} rounds x {args.steps} steps, each VDA row "
          "alternating with plain; ratios: median (min-max) over rounds\n")
    print("| method | mode | k | step ms | x plain | floor (k+1)x | vs floor | aug ms | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        floor = r["k"] + 1
        ratio = Spread(**r["x_plain"])
        vs_floor = Spread(ratio.median / floor, ratio.low / floor, ratio.high / floor, ratio.rounds)
        method = args.strategy if r["k"] == 0 else args.strategy + "+VDA"
        print(f"| {method} | {r['mode']} | {r['k']} | {r['step_ms']:.0f} | {ratio.text()} | {floor} | "
              f"{vs_floor.text()} | {r['aug_ms']:.0f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
