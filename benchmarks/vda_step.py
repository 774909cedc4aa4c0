"""Time per optimizer step and peak memory: plain fine-tuning vs VDA, same model, batch and length.

    python benchmarks/vda_step.py                                  # CPU default: packaged MiniLM, B=16, L=64
    python benchmarks/vda_step.py --arch bert-base --batch-size 32 --seq-len 128 --precision bf16  # GPU

Each configuration runs in its own subprocess so that peak memory (CUDA max allocated, or the
process's max RSS on CPU) belongs to that configuration alone. A step is forward + backward +
AdamW step. The floor for VDA is (k+1) x a plain step (one extra forward/backward per virtual
sample); the ``aug ms`` column is the frozen MLM pass + mixing alone, which is most of the rest.
Sharp mode is measured twice: in the first epoch (the MLM scores every batch) and after it, when
each example's candidates come from the candidate cache (``vda.cache_mb``) and the MLM does not run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def run_one(args: argparse.Namespace) -> dict:
    import torch

    from vda.augment import VirtualAugmenter
    from vda.config import VDAConfig
    from vda.config import StrategyConfig
    from vda.objective import StepContext, VDATerm
    from vda.strategies import get_strategy

    torch.manual_seed(0)
    device = args.device
    clf, mlm = build(args.arch, device)
    vcfg = VDAConfig(mode=args.mode, k=args.k, lam=0.0 if args.k == 0 else 1.0,
                     sigma=1.0 if args.mode == "sharp" else 1e-2, cache_mb=1024 if args.cached else 0)
    aug = VirtualAugmenter(mlm, vcfg)
    ids = torch.randint(1000, 30000, (args.batch_size, args.seq_len), device=device)
    ids[:, 0], ids[:, -1] = 101, 102
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "labels": torch.randint(0, 2, (args.batch_size,), device=device)}
    keys = list(range(args.batch_size)) if args.cached else None  # warm-up steps fill the cache
    if args.cached:
        batch["example_index"] = torch.tensor(keys)  # on the CPU, as vda.batching.collate leaves it
    opt = torch.optim.AdamW(clf.parameters(), lr=1e-5, fused=True)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    autocast = lambda: torch.autocast(device.split(":")[0], dtype=amp or torch.float32, enabled=amp is not None)
    ctx = StepContext(StrategyConfig(name=args.strategy), VDATerm(aug, vcfg) if args.k else None, autocast=autocast)
    step_fn = get_strategy(args.strategy)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        step_fn(clf, batch, ctx)
        opt.step()

    def timed(fn, n: int) -> float:
        for _ in range(args.warmup):
            fn()
        sync()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - start) / n * 1000

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    step_ms = timed(step, args.steps)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    aug_ms = 0.0
    if args.k:
        with autocast():
            aug_ms = timed(lambda: aug(ids, batch["attention_mask"], args.k, batch["token_type_ids"], keys=keys),
                           args.steps)
    mode = (f"{args.mode}, cached" if args.cached else args.mode) if args.k else "-"
    return {"mode": mode, "k": args.k, "step_ms": step_ms, "aug_ms": aug_ms, "peak_mib": peak / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS), default="default")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ks", default="1,2,3")
    p.add_argument("--modes", default="sharp,paper,code")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--device", default=None, help="cuda when a GPU is visible, else cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--strategy", default="plain", help="base strategy of every row (plain, freelb, smart, smix)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one config
    p.add_argument("--k", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="sharp", help=argparse.SUPPRESS)
    p.add_argument("--cached", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = p.parse_args()
    args.device = args.device or ("cuda" if _has_cuda() else "cpu")
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args)))
        return
    ks, modes = list(map(int, args.ks.split(","))), args.modes.split(",")
    configs = [(0, "sharp", False)] + [(k, m, False) for m in modes for k in ks]
    configs += [(k, "sharp", True) for k in ks] if "sharp" in modes else []
    rows = []
    for k, mode, cached in configs:
        cmd = [sys.executable, __file__, "--one", f"--k={k}", f"--mode={mode}"] + ["--cached"] * cached \
            + _passthrough(args)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(f"  measured {rows[-1]}", file=sys.stderr)
    _print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _passthrough(args: argparse.Namespace) -> list[str]:
    return [f"--arch={args.arch}", f"--batch-size={args.batch_size}", f"--seq-len={args.seq_len}",
            f"--steps={args.steps}", f"--warmup={args.warmup}", f"--precision={args.precision}",
            f"--device={args.device}", f"--threads={args.threads}", f"--strategy={args.strategy}"]


def _print_table(rows: list[dict], args: argparse.Namespace) -> None:
    plain = rows[0]["step_ms"]
    print(f"\n{args.arch} strategy={args.strategy} B={args.batch_size} L={args.seq_len} {args.precision} on {args.device}"
          f" ({args.threads} threads where CPU)\n")
    print("| method | mode | k | step ms | x plain | floor (k+1)x | vs floor | aug ms | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        floor = r["k"] + 1
        ratio = r["step_ms"] / plain
        print(f"| {args.strategy if r['k'] == 0 else args.strategy + '+VDA'} | {r['mode']} | {r['k']} | {r['step_ms']:.0f} | {ratio:.2f} | "
              f"{floor} | {ratio / floor:.2f} | {r['aug_ms']:.0f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
