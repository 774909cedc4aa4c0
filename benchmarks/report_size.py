"""Size and load time of the HTML report for a sweep-sized store (50 checkpoints x 1,000 examples).

    python benchmarks/report_size.py                              # 50 x 1000, in a temporary directory
    python benchmarks/report_size.py --checkpoints 5 --examples 200 --keep /tmp/report-bench

Builds a synthetic store through the store's own writer (``ResultStore``), with every column of
``EXAMPLE_SCHEMA`` (so columns added later are filled too) and the shape of a real sweep: the same
example sample in every checkpoint, MR-length texts, about half the attacks succeeding with one to
three substituted words. Then it writes the report and opens it in headless Chromium over the
DevTools protocol: first contentful paint, DOMContentLoaded (the page's script has rendered the
first 200 examples by then) and load, median of ``--rounds`` fresh loads.

Why measured in a browser: what makes a report slow is the browser's work (parsing, layout of the
rows it renders), which no file size predicts. Needs Chromium (``make setup``) and aiohttp (installed
with the project's dependencies) for the DevTools connection; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.report import write_html  # noqa: E402
from attack_workers.results.store import EXAMPLE_SCHEMA, ResultStore  # noqa: E402

WORDS = ("film movie story plot actor actress director scene script camera music score performance cast "
         "character drama comedy thriller ending moment audience screen picture role dialogue").split()
ADJECTIVES = "good great fine moving dull flat clever funny sharp smart bland tired fresh warm cold".split()
FILLER = "the a of and is it that with as but this its for an".split()
STATUS_WEIGHTS = {"succeeded": 0.45, "failed": 0.35, "skipped": 0.20}


def sentence(rng: random.Random) -> str:
    """An MR-length review sentence (about 20 words) from a small vocabulary."""
    words = [rng.choice((WORDS, ADJECTIVES, FILLER, FILLER)[rng.randrange(4)]) for _ in range(rng.randint(12, 30))]
    return " ".join(words).capitalize() + " ."


def attacked(text: str, rng: random.Random) -> tuple[str, list[list[str]]]:
    """The text with 1-3 content words swapped, and the (old, new) pairs in word order."""
    words = text.split()
    content = [i for i, w in enumerate(words) if w.lower() not in FILLER and w.isalpha()]
    positions = sorted(rng.sample(content, min(len(content), rng.randint(1, 3))))
    pairs = []
    for i in positions:
        new = rng.choice(ADJECTIVES + WORDS)
        pairs.append([words[i], new])
        words[i] = new
    return " ".join(words), pairs


def defaults() -> dict[str, Any]:
    """Every schema column with a neutral value: new audit columns get False, numbers 0 or NaN."""
    def neutral(field: pa.Field) -> Any:
        if pa.types.is_boolean(field.type):
            return False
        if pa.types.is_integer(field.type):
            return 0
        return float("nan") if pa.types.is_floating(field.type) else None
    return {field.name: neutral(field) for field in EXAMPLE_SCHEMA}


def build_store(root: Path, checkpoints: int, examples: int, shard_size: int, seed: int = 0) -> ResultStore:
    """A sweep-shaped store: ``checkpoints`` x ``examples`` rows over 5 seeds, the first fifth plain fine-tuning."""
    rng = random.Random(seed)
    store = ResultStore(root)
    texts = [sentence(rng) for _ in range(examples)]
    flags = [f.name for f in EXAMPLE_SCHEMA if f.name.startswith("audit_") and f.name != "audit_flagged"
             and pa.types.is_boolean(f.type)]
    for c in range(checkpoints):
        checkpoint, baseline = f"{c:04d}" + "ab" * 6, c < max(1, checkpoints // 5)
        run = f"t{c:02d}-{'baseline' if baseline else 'vda'}-seed{c % 5}"
        store.write_checkpoint({"checkpoint_hash": checkpoint, "path": f"/runs/{run}/best", "run_id": run, "epoch": 3,
                                "recorded_at": time.time(), "git_commit": "d2bc21d" + "0" * 33, "config.seed": c % 5,
                                "config.vda.lam": 0.0 if baseline else 1.0, "config.vda.mode": "sharp",
                                "config.vda.sigma": [0.001, 0.01, 0.1][c % 3], "config.vda.k": [1, 3, 5][c // 3 % 3],
                                "metrics.dev_acc": 0.75 + rng.random() / 10})
        rows = []
        for e, text in enumerate(texts):
            status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
            row = defaults()
            perturbed, pairs = attacked(text, rng) if status == "succeeded" else (text, [])
            row.update(checkpoint_hash=checkpoint, run_id=run, attack_key="5eed" * 4, protocol="vda-paper",
                       attack_params=json.dumps({"max_candidates": 48, "word_similarity_threshold": 0.7}),
                       dataset="mr", split="dev", example_id=f"mr-dev-{e:05d}", label=e % 2,
                       clean_pred=(e + (status == "skipped")) % 2, adv_pred=(e + (status != "failed")) % 2,
                       status=status, num_queries=rng.randint(2, 400), num_words=len(text.split()),
                       num_whitespace_words=len(text.split()), words_changed=len(pairs), original_text=text,
                       perturbed_text=perturbed, seconds=rng.random(), shard_id=f"s{e // shard_size}", worker="w:1:cpu",
                       finished_at=time.time(), substitutions=json.dumps(pairs),
                       audit_min_cos=round(rng.uniform(0.7, 1.0), 3) if pairs else float("nan"))
            if pairs and rng.random() < 0.1:
                row[rng.choice(flags)] = row["audit_flagged"] = True
            rows.append(row)
        for start in range(0, len(rows), shard_size):
            store.write_examples(rows[start:start + shard_size])
    return store


async def paint_timings(browser: str, page: Path, profile: Path) -> dict[str, float]:
    """First contentful paint, DOMContentLoaded and load (ms from navigation start) of one fresh load."""
    import aiohttp

    process = subprocess.Popen([browser, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-port=0",
                                f"--user-data-dir={profile}", "--no-first-run", "--disable-background-networking",
                                "--disable-component-update", "--window-size=1400,1000", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and port_file.read_text().count("\n") >= 1:
                break
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                target = next(t for t in await reply.json() if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                calls = iter(range(1, 1000))

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    number = next(calls)
                    await ws.send_json({"id": number, "method": method, "params": params})
                    async for message in ws:
                        data = json.loads(message.data)
                        if data.get("id") == number:
                            return data.get("result", {})
                    raise RuntimeError("DevTools connection closed")

                await call("Page.navigate", url=page.resolve().as_uri())
                script = ("JSON.stringify({paint: performance.getEntriesByName('first-contentful-paint')"
                          ".map(e => e.startTime)[0] ?? null, nav: performance.getEntriesByType('navigation')[0]})")
                for _ in range(600):
                    result = await call("Runtime.evaluate", expression=script, returnByValue=True)
                    timing = json.loads(result["result"]["value"])
                    if timing["paint"] is not None and timing["nav"] and timing["nav"]["loadEventEnd"] > 0:
                        return {"first_contentful_paint": timing["paint"],
                                "dom_content_loaded": timing["nav"]["domContentLoadedEventEnd"],
                                "load": timing["nav"]["loadEventEnd"]}
                    await asyncio.sleep(0.05)
                raise RuntimeError(f"{page}: no first paint and load within 30 s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=50)
    parser.add_argument("--examples", type=int, default=1000, help="examples per checkpoint")
    parser.add_argument("--shard-size", type=int, default=100, help="rows per store file (a sweep writes 10)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh browser loads to take the median of")
    parser.add_argument("--keep", type=Path, help="build the store and report here and keep them")
    args = parser.parse_args(argv)
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        started = time.perf_counter()
        store = build_store(work / "store", args.checkpoints, args.examples, args.shard_size)
        built, cpu = time.perf_counter(), time.process_time()
        page = write_html(store.root, work, title=f"synthetic {args.checkpoints} x {args.examples}")
        written, cpu = time.perf_counter(), time.process_time() - cpu
        size = page.stat().st_size
        print(f"store: {args.checkpoints} checkpoints x {args.examples} examples, built in {built - started:.1f} s")
        print(f"report: {page} {size / 2**20:.1f} MiB, written in {written - built:.1f} s ({cpu:.1f} s CPU: a "
              "shared machine stretches the wall time)")
        if browser is None:
            print("no Chromium on PATH: install Debian's chromium package (make setup) to measure the load time")
            return 1
        rounds = [asyncio.run(paint_timings(browser, page, Path(tempfile.mkdtemp(dir=scratch))))
                  for _ in range(args.rounds)]
        for name in rounds[0]:
            values = [r[name] for r in rounds]
            print(f"{name}: median {statistics.median(values):.0f} ms (range {min(values):.0f}-{max(values):.0f}, "
                  f"{len(values)} loads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
