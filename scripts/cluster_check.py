"""The used-by path on a real two-node Ray cluster, on this machine: `ray start` twice, then the sweep.

    ../shared/bin/offline .venv/bin/python scripts/cluster_check.py            # or: make cluster-check
    ../shared/bin/offline .venv/bin/python scripts/cluster_check.py --fault    # kill the worker node's raylet mid-sweep

What `ray up cluster.yaml` leaves on AWS, minus AWS: a head node and a worker node started by Ray's own
CLI with cluster.yaml's `head_start_ray_commands` / `worker_start_ray_commands` (read from the file and
translated by ``local_commands``: this machine's ports and temp dirs, 1 CPU per node, /mnt/shared -> a
local directory), the shared cache of cluster.yaml's `VDA_CACHE_DIR` seeded from this machine's cache
(MR data, word lexicon; candidate tables made fresh), cluster.yaml's `head_setup_commands` run against
it, then `python tune/sweep.py --address auto --config <a tiny two-trial sweep>` from the head's
environment. It verifies that trials and attack actors ran on both nodes (node ids in Tune's results
and in the store), that the store is complete (every planned example once, nothing pending or
failed), that the sweep exits 0, and it stops both nodes by the pids of their own processes (never
`ray stop`, which would stop every Ray on the machine). ``--fault`` SIGKILLs the worker node's raylet
once a trial there has stored its first checkpoint: the sweep must finish on the head with no trial or
shard lost or duplicated.

Resources are chosen so that placement is forced: each node has 1 CPU, an attack actor takes 0.6 and a
trial 0.4, so the pool's two actors (started first) land one per node and so do the two trials. After
the fault a replacement actor cannot fit on the head while its first actor lives: the retried trial
gets the CPU the other trial freed, not a new actor.

Everything that starts Ray must run in a private network namespace (Ray probes cloud metadata
addresses at start-up); the script refuses to run elsewhere. It makes itself the subreaper of what it
starts, so every Ray process is its descendant, found by pid and stopped at the end. Exit status 0
when every check passed, 1 when one failed (listed), 2 when the cluster could not be set up.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "cluster.yaml"
SHARED_MOUNT = "/mnt/shared"  # cluster.yaml's EFS mount point; a local directory stands in for it here
NAME = "cluster-check"
HEAD_CPUS, WORKER_CPUS = 1, 1
TRIAL_CPUS, ATTACK_CPUS = 0.4, 0.6  # one actor and one trial per node, and no replacement actor fits after a loss
EPOCHS, NUM_EXAMPLES = 3, 8  # the fault lands after epoch 1; 8 shards of 1 example per checkpoint
PR_SET_CHILD_SUBREAPER = 36


class SetupError(RuntimeError):
    """The cluster could not be started as cluster.yaml says (exit status 2)."""


# ------------------------------------------------------------ cluster.yaml -> commands for this machine

@dataclass(frozen=True)
class LocalCommands:
    head: str  # shell command lines, run with sh -c as the launcher runs them over SSH
    worker: str
    head_setup: list[str]
    cache_dir: str  # VDA_CACHE_DIR of cluster.yaml, under the local stand-in of the shared mount
    skipped: list[str]  # cluster.yaml's commands not run here, and why


def _ray_start(commands: list[str], role: str) -> tuple[str, list[str]]:
    starts = [c for c in commands if "ray start" in c]
    if len(starts) != 1:
        raise SetupError(f"cluster.yaml: {role}_start_ray_commands must have one `ray start` line, found {len(starts)}")
    others = [c for c in commands if c is not starts[0]]
    if any(c.strip() != "ray stop" for c in others):
        raise SetupError(f"cluster.yaml: {role}_start_ray_commands: only `ray stop` may precede `ray start`: {others}")
    return " ".join(starts[0].split()), others


def _replace_once(command: str, pattern: str, new: str, what: str) -> str:
    out, n = re.subn(pattern, new, command)
    if n != 1:
        raise SetupError(f"cluster.yaml: {what}: expected {pattern!r} once in {command!r}, found it {n} times")
    return out


def local_commands(config: dict[str, Any], ports: dict[str, dict[str, int]], temp_dirs: dict[str, Path],
                   shared: Path) -> LocalCommands:
    """cluster.yaml's start and head set-up commands as this machine runs them.

    Translations (each must apply exactly once, else cluster.yaml changed in a way this check does not
    follow and it says so): `ray stop` is not run (it stops every Ray process on the machine); the head's
    `--port` and both `--object-manager-port` values become free local ports (two nodes share this
    machine's loopback); `--autoscaling-config` is dropped (`ray up` writes that file; no autoscaler
    here); `$RAY_HEAD_IP` is 127.0.0.1; each node gets `--num-cpus=1`, its own `--temp-dir` and its own
    remaining ports; `~/vda` is this checkout and `/mnt/shared` a local directory.
    """
    head, head_stop = _ray_start(config["head_start_ray_commands"], "head")
    worker, worker_stop = _ray_start(config["worker_start_ray_commands"], "worker")
    head = _replace_once(head, r"--port=6379\b", f"--port={ports['head']['gcs']}", "head --port")
    head = _replace_once(head, r"--object-manager-port=\d+", f"--object-manager-port={ports['head']['object']}",
                         "head --object-manager-port")
    head = _replace_once(head, r" --autoscaling-config=\S+", "", "head --autoscaling-config")
    worker = _replace_once(worker, r"--address=\$RAY_HEAD_IP:6379\b", f"--address=127.0.0.1:{ports['head']['gcs']}",
                           "worker --address")
    worker = _replace_once(worker, r"--object-manager-port=\d+", f"--object-manager-port={ports['worker']['object']}",
                           "worker --object-manager-port")
    head += _node_flags(HEAD_CPUS, temp_dirs["head"], ports["head"], head=True)
    worker += _node_flags(WORKER_CPUS, temp_dirs["worker"], ports["worker"], head=False)
    setup = " ".join(config.get("setup_commands") or [])
    found = re.findall(r"export VDA_CACHE_DIR=([^'\"\s;]+)", setup)
    if len(found) != 1 or not found[0].startswith(SHARED_MOUNT + "/"):
        raise SetupError(f"cluster.yaml: setup_commands must export one VDA_CACHE_DIR under {SHARED_MOUNT}, "
                         f"found {found}")
    cache = str(shared) + found[0][len(SHARED_MOUNT):]
    head_setup = [c.replace("cd ~/vda", f"cd {shlex.quote(str(REPO))}").replace(SHARED_MOUNT, str(shared))
                  for c in config.get("head_setup_commands") or []]
    skipped = [f"{c!r} (stops every Ray process on the machine; the check stops its nodes by pid)"
               for c in head_stop + worker_stop]
    skipped += [f"{' '.join(c.split())[:70]!r}... (AWS: EFS mount, CUDA wheel, pip install; this checkout is "
                "installed in .venv)" for c in config.get("setup_commands") or [] if "VDA_CACHE_DIR" not in c]
    return LocalCommands(head, worker, head_setup, cache, skipped)


def _node_flags(cpus: int, temp_dir: Path, ports: dict[str, int], head: bool) -> str:
    flags = [f"--num-cpus={cpus}", f"--temp-dir={temp_dir}", f"--node-manager-port={ports['node']}",
             f"--min-worker-port={ports['workers']}", f"--max-worker-port={ports['workers'] + 99}",
             f"--runtime-env-agent-port={ports['runtime_env']}", f"--metrics-export-port={ports['metrics']}",
             f"--dashboard-agent-grpc-port={ports['agent_grpc']}",
             f"--dashboard-agent-listen-port={ports['agent_http']}"]
    flags.append("--object-store-memory=300000000")  # a shared dev machine: the sweep passes files, not objects
    if head:
        flags += [f"--dashboard-port={ports['dashboard']}", "--disable-usage-stats"]
    return "".join(f" {f}" for f in flags)


PORT_NAMES = ("gcs", "object", "node", "runtime_env", "metrics", "agent_grpc", "agent_http", "dashboard")


def free_ports() -> dict[str, dict[str, int]]:
    """For the head and the worker node: ports nothing listens on now (all held open together while
    picked, so none is picked twice), plus a 100-port range for each node's Ray workers."""
    sockets = []
    for _ in range(2 * len(PORT_NAMES)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    numbers = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return {role: {**dict(zip(PORT_NAMES, numbers[i * len(PORT_NAMES):])), "workers": 20000 + 100 * i}
            for i, role in enumerate(("head", "worker"))}


# ------------------------------------------------------------ processes

def _ppid_map() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root: int) -> set[int]:
    parents = _ppid_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def reap() -> None:
    """Collect exited orphans (this process is their subreaper); only once no child is waited for elsewhere."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _mentions(args: list[str], directory: Path) -> bool:
    d = str(directory)
    return any(a == d or a.startswith(d + "/") or f"={d}/" in a or a.endswith(f"={d}") for a in args)


@dataclass
class Node:
    role: str
    temp_dir: Path
    command: str
    node_id: str = ""
    pids: set[int] = field(default_factory=set)  # every process of this node seen so far

    def refresh(self) -> set[int]:
        """Add this node's processes: those naming its temp dir (Ray's daemons) and their descendants
        (workers, agents), among this check's descendants."""
        mine = descendants(os.getpid())
        roots = {pid for pid in mine if _mentions(cmdline(pid), self.temp_dir)}
        self.pids |= roots | {d for r in roots for d in descendants(r) if d in mine}
        return self.pids

    def raylet(self) -> int:
        found = [p for p in self.refresh() if alive(p) and Path(cmdline(p)[0]).name == "raylet"]
        if len(found) != 1:
            raise SetupError(f"{self.role} node: expected one raylet process, found {found}")
        return found[0]

    def living(self) -> list[int]:
        return sorted(p for p in self.pids if alive(p))

    def reap(self) -> None:
        """Collect this node's exited processes. It matters: a Ray worker exits when its raylet is gone,
        which it tells by kill(raylet, 0), and a zombie raylet (killed, not collected) passes that test."""
        for pid in self.pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not a child of this check (yet), or collected already
                pass

    def stop(self, grace: float = 15.0) -> tuple[int, list[int]]:
        """SIGTERM every process of this node (what `ray stop` does, for these pids only), then SIGKILL
        what is left after ``grace`` seconds; (processes stopped, pids still alive)."""
        self.refresh()
        targets = self.living()
        for pid in targets:
            _signal(pid, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and self.living():
            self.reap()
            time.sleep(0.2)
            self.refresh()
        for pid in self.living():
            _signal(pid, signal.SIGKILL)
        time.sleep(0.5)
        reap()
        return len(targets), self.living()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def become_subreaper() -> None:
    """Orphans of what this process starts (the daemons `ray start` leaves) re-parent to it, not to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SetupError(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


def require_private_network() -> None:
    interfaces = sorted(name for _, name in socket.if_nameindex())  # this process's network namespace
    if interfaces != ["lo"]:
        raise SetupError(f"network interfaces {interfaces}: run inside a private network namespace with only "
                         "loopback (../shared/bin/offline ... or make cluster-check): Ray probes cloud metadata "
                         "addresses at start-up")


def run_shell(command: str, env: dict[str, str], log: Path, timeout: float) -> None:
    with log.open("a") as out:
        out.write(f"$ {command}\n")
        out.flush()
        done = subprocess.run(["sh", "-c", command], env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, cwd=REPO)
    if done.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SetupError(f"`{command}` exited {done.returncode}:\n{tail}")


# ------------------------------------------------------------ the sweep

def make_tiny_model(directory: Path) -> Path:
    """A 2-layer, hidden-32 BERT masked LM on the packaged backbone's vocabulary (classifier and VDA MLM)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from vda.assets import default_backbone_path

    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def sweep_config(output_dir: Path, model: Path) -> dict[str, Any]:
    """Two VDA trials (both load the shared candidate table), 8 examples attacked per trial, 1 per shard."""
    return {
        "fixed": {"model": str(model), "mlm": str(model), "lr": 1e-3, "batch_size": 16, "epochs": EPOCHS,
                  "eval_test": False, "data": {"dataset": "mr", "max_train_examples": 512, "max_eval_examples": 16,
                                               "max_length": 32},
                  "vda": {"mode": "sharp", "k": 1}},
        "variants": {"sigma-1": {"vda.sigma": 1.0}, "sigma-0.5": {"vda.sigma": 0.5}},
        "sweep": {"name": NAME, "output_dir": str(output_dir), "max_failures": 2,
                  "objectives": ["attack_acc", "dev_acc"],
                  "trial": {"cpus": TRIAL_CPUS},
                  "attack": {"workers": 2, "cpus": ATTACK_CPUS, "num_examples": NUM_EXAMPLES, "shard_size": 1,
                             "mlm": "default", "params": {"max_candidates": 8}}},
    }


def seed_cache(cache: Path) -> list[str]:
    """The shared VDA_CACHE_DIR: every entry of this machine's cache linked in, except the candidate tables
    (made by this sweep); the names linked."""
    from vda.assets import cache_dir

    source = cache_dir()  # before VDA_CACHE_DIR is set: this machine's own cache (make setup filled it)
    cache.mkdir(parents=True)
    linked = []
    for entry in sorted(source.iterdir()):
        if entry.name != "candidates" and not entry.name.startswith("."):
            (cache / entry.name).symlink_to(entry.resolve())
            linked.append(entry.name)
    return linked


def trial_results(experiment: Path) -> dict[str, list[dict[str, Any]]]:
    """Every result each trial reported (its result.json lines), by trial id."""
    out = {}
    for path in sorted(experiment.glob("*/result.json")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        results = []
        for line in lines:
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                pass
        out[path.parent.name] = results
    return out


def _lexicon_cached() -> bool:
    from attack_workers.lexicon.vectors import LexiconSpec, recipe_hash
    from vda.assets import cache_dir

    return (cache_dir() / "word-vectors" / recipe_hash(LexiconSpec()) / "meta.json").is_file()


def raw_example_rows(store: Path) -> int:
    """Rows in every shard file, duplicates included (the store's reader keeps one per key)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in (store / "examples").glob("*/*/*.parquet")
               if not p.name.startswith("."))


# ------------------------------------------------------------ the check

@dataclass
class Check:
    fault: bool
    timeout: float
    keep: bool
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vcc-", dir="/tmp")))
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    cache: Path = Path()

    def expect(self, ok: bool, what: str) -> bool:
        if not ok:
            self.problems.append(what)
        return ok

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def run(self) -> int:
        started = time.time()
        require_private_network()
        become_subreaper()
        shared = self.root / "shared"  # stands in for the EFS mount /mnt/shared
        temp_dirs = {"head": self.root / "ray", "worker": self.root / "wrk"}  # short: socket paths <= 107 bytes
        log = self.root / "check.log"
        config = yaml.safe_load(CLUSTER_YAML.read_text())
        ports = free_ports()
        commands = local_commands(config, ports, temp_dirs, shared)
        cache = self.cache = Path(commands.cache_dir)
        linked = seed_cache(cache)
        model = make_tiny_model(shared / "tiny-bert")
        config_path = shared / f"{NAME}.yaml"
        config_path.write_text(yaml.safe_dump(sweep_config(shared / "results", model)))
        # RAY_TMPDIR: `--address auto` reads <RAY_TMPDIR>/ray/ray_current_cluster, which the head's `ray start` wrote
        env = {**os.environ, "RAY_TMPDIR": str(self.root),
               "VDA_CACHE_DIR": str(cache), "RAY_HEAD_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0",
               "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),  # no ~/.ray/auth_token written
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("RAY_ADDRESS", None)
        self.say(f"cluster check{' --fault' if self.fault else ''}: {self.root} (log: {log})")
        self.say(f"  shared cache {cache}: {', '.join(linked)} linked from this machine's cache; candidates made here")
        for skipped in commands.skipped:
            self.say(f"  not run: {skipped}")
        t = time.time()
        if not _lexicon_cached():
            self.say("  the word lexicon of this checkout's recipe is not in the cache: head_setup_commands build it "
                     "(as make setup would; minutes)")
        for command in commands.head_setup:
            run_shell(command, env, log, timeout=1800)
        self.say(f"  head_setup_commands: {len(commands.head_setup)} run against the shared cache "
                 f"({time.time() - t:.0f} s)")
        passed = False
        try:
            rc = self._cluster(commands, temp_dirs, env, log, shared, config_path, started)
            passed = rc == 0
            return rc
        finally:
            self._teardown()
            self.say(f"total {time.time() - started:.0f} s on {os.cpu_count()} cores "
                     f"(load average {os.getloadavg()[0]:.1f} at the end)")
            if passed and not self.problems and not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                self.say(f"kept {self.root}")

    def _cluster(self, commands: LocalCommands, temp_dirs: dict[str, Path], env: dict[str, str], log: Path,
                 shared: Path, config_path: Path, started: float) -> int:
        t = time.time()
        head = Node("head", temp_dirs["head"], commands.head)
        worker = Node("worker", temp_dirs["worker"], commands.worker)
        for node in (head, worker):
            self.nodes.append(node)
            run_shell(node.command, env, log, timeout=120)
            node.refresh()
        self._node_ids(env, head, worker)
        self.say(f"  ray start x2: {time.time() - t:.0f} s")
        for node in (head, worker):
            self.say(f"  {node.role:6} node {node.node_id}  raylet pid {node.raylet()}  "
                     f"{len(node.living())} processes  temp dir {node.temp_dir}")

        sweep_log = self.root / "sweep.log"
        command = [sys.executable, "tune/sweep.py", "--address", "auto", "--config", str(config_path), "--quiet"]
        self.say(f"  $ {' '.join(command[1:])}")
        t = time.time()
        experiment = shared / "results" / NAME
        killed: dict[str, Any] = {}
        with sweep_log.open("w") as out:
            sweep = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                     start_new_session=True)
            while sweep.poll() is None:
                if time.time() - t > self.timeout:
                    os.killpg(sweep.pid, signal.SIGKILL)
                    sweep.wait()
                    self.expect(False, f"the sweep ran past --timeout {self.timeout:.0f} s and was killed")
                    break
                if self.fault and not killed:
                    killed = self._maybe_kill(worker, experiment, t)
                for node in (head, worker):
                    node.refresh()
                    node.reap()
                time.sleep(0.25)
        rc = sweep.returncode
        seconds = time.time() - t
        self.expect(rc == 0, f"the sweep exited {rc} (log: {sweep_log})")
        self.say(f"  sweep exited {rc} after {seconds:.0f} s")
        if self.fault:
            self.expect(bool(killed), "the fault was never injected: no trial reported an epoch on the worker node")
        self._verify(head, worker, experiment, killed, sweep_log)
        self._report(experiment, env)
        if self.problems:
            tail = "\n".join(sweep_log.read_text().splitlines()[-30:])
            print(f"--- last lines of {sweep_log}:\n{tail}\n---", file=sys.stderr)
        return 1 if self.problems else 0

    def _node_ids(self, env: dict[str, str], head: Node, worker: Node) -> None:
        """Ask the cluster (as a short-lived driver) for its nodes; tell head from worker by its resources."""
        probe = ("import json, ray; ray.init(address='auto', log_to_driver=False, logging_level='ERROR'); "
                 "print(json.dumps([[n['NodeID'], 'node:__internal_head__' in n['Resources'], n['Alive'], "
                 "n['Resources'].get('CPU', 0)] for n in ray.nodes()]))")
        deadline = time.time() + 60
        while True:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
            nodes = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
            living = [n for n in nodes if n[2]]
            if len(living) == 2 or time.time() > deadline:
                break
            time.sleep(1)
        if len(living) != 2 or sum(n[1] for n in living) != 1:
            raise SetupError(f"expected a head and a worker node alive, got {nodes} ({done.stderr[-2000:]})")
        head.node_id = next(n[0] for n in living if n[1])
        worker.node_id = next(n[0] for n in living if not n[1])

    def _maybe_kill(self, worker: Node, experiment: Path, t: float) -> dict[str, Any]:
        """SIGKILL the worker node's raylet 1 s after a trial running there stored its first checkpoint.

        Trial-side signals only (Tune's result.json is written by the driver, seconds late): a trial's
        process runs in ``.../working_dirs/<trial id>`` (Tune chdirs there), and its epoch-1 checkpoint
        appears in the shared experiment directory when the trial uploads it, just before it reports it.
        The second epoch is then under way: the retry must resume from epoch 1's checkpoint.
        """
        for pid in worker.living():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if "/working_dirs/" not in cwd:
                continue
            trial = Path(cwd).name
            first = experiment / trial / "checkpoint_000000"
            if first.is_dir():
                time.sleep(1.0)  # the driver registers the reported checkpoint
                raylet = worker.raylet()
                os.kill(raylet, signal.SIGKILL)
                stored = sorted(p.name for p in (experiment / trial).glob("checkpoint_*"))
                self.say(f"  fault: SIGKILL worker raylet pid {raylet} at {time.time() - t:.0f} s, while trial {trial} "
                         f"(pid {pid}) trained there with {stored} stored")
                return {"trial": trial, "pid": raylet, "at": time.time()}
        return {}

    def _verify(self, head: Node, worker: Node, experiment: Path, killed: dict[str, Any], sweep_log: Path) -> None:
        from attack_workers.results.store import ResultStore

        names = {head.node_id: "head", worker.node_id: "worker"}
        results = trial_results(experiment)
        self.expect(len(results) == 2, f"{len(results)} trial(s) in {experiment}, expected 2")
        trial_nodes = set()
        for trial, rows in sorted(results.items()):
            epochs = [r.get("epoch") for r in rows]
            where = [names.get(r.get("node_id"), str(r.get("node_id"))) for r in rows]
            trial_nodes |= {r.get("node_id") for r in rows[:1]}  # where each trial started
            failures = (experiment / trial / "error.txt")
            retried = failures.read_text().count("Failure #") if failures.exists() else 0
            self.say(f"  trial {trial}: epochs {epochs} on {'/'.join(dict.fromkeys(where))} (per epoch: "
                     f"{','.join(where)}), {retried} failure(s) retried")
            self.expect(sorted(set(epochs)) == list(range(1, EPOCHS + 1)),
                        f"trial {trial} reported epochs {epochs}, expected 1..{EPOCHS}")
            if killed and trial == killed["trial"]:
                self.expect(retried >= 1 and where[-1] == "head",
                            f"trial {trial} (on the killed node) was not retried on the head: {where}, {retried}")
        self.expect(trial_nodes == {head.node_id, worker.node_id},
                    f"trials started on {sorted(names.get(n, n) for n in trial_nodes)}, expected both nodes")

        store = ResultStore(experiment / "store")
        rows = store.load_examples()
        summary = store.load_summary()
        failures = store.load_failures()
        checkpoints = store.load_checkpoints()
        raw = raw_example_rows(store.root)
        planned = sum(len(store.planned_example_ids(c, k)) for c, k in
                      zip(summary.get("checkpoint_hash", []), summary.get("attack_key", [])))
        by_worker = rows.groupby(["node_id", "worker"]).size() if len(rows) else {}
        for (node, name), count in dict(by_worker).items():
            self.say(f"  attack actor {name} on {names.get(node, node)} node {node}: {count} row(s)")
        actor_nodes = set(rows["node_id"]) if len(rows) else set()
        if self.fault:
            self.expect(head.node_id in actor_nodes, "no attack actor ran on the head node")
            after = rows[rows["finished_at"] > killed["at"]] if killed and len(rows) else rows.iloc[:0]
            late = int((after["node_id"] == worker.node_id).sum())
            self.say(f"  rows finished after the fault: {len(after)}, {late} of them on the worker node")
            self.expect(late == 0, f"{late} row(s) from the worker node finished after its raylet was killed")
        else:
            self.expect(actor_nodes == {head.node_id, worker.node_id},
                        f"attack actors ran on {sorted(names.get(n, n) for n in actor_nodes)}, expected both nodes")
        epochs = checkpoints.groupby("run_id")["epoch"].apply(sorted).to_dict() if len(checkpoints) else {}
        shard_files = len([p for p in (store.root / "examples").glob("*/*/*.parquet") if not p.name.startswith(".")])
        pending = int(summary["pending_examples"].sum()) if len(summary) else -1
        self.say(f"  store: {len(checkpoints)} checkpoint manifest(s) {dict(epochs)}; {len(summary)} attacked; "
                 f"{len(rows)} example rows ({raw} in {shard_files} shard files, {planned} planned, {pending} "
                 f"pending); {len(failures)} failure record(s)")
        self.expect(len(summary) == 2, f"{len(summary)} checkpoint(s) attacked, expected 2 (one per trial)")
        self.expect(all(e == list(range(1, EPOCHS + 1)) for e in epochs.values()) and len(epochs) == 2,
                    f"checkpoint manifests per run {epochs}: an epoch lost or trained twice")
        self.expect(len(rows) == raw == planned == 2 * NUM_EXAMPLES and shard_files == 2 * NUM_EXAMPLES,
                    f"rows {len(rows)}, raw {raw}, planned {planned}, shard files {shard_files}: expected "
                    f"{2 * NUM_EXAMPLES} each (no shard lost or duplicated)")
        self.expect(pending == 0 and failures.empty, f"{pending} example(s) pending, {len(failures)} failure(s)")
        self.expect(not (experiment / "unattacked.json").exists(), "unattacked.json lists checkpoints")
        made = re.findall(r"candidate tables: (\d+) ready", sweep_log.read_text())
        tables = [p.name for p in (self.cache / "candidates").glob("*") if p.is_dir()]
        self.say(f"  candidate tables: {made[-1] if made else 0} made up front on the head; the shared cache "
                 f"holds {len(tables)} ({', '.join(tables)}), loaded by the trials of both nodes")
        self.expect(len(tables) == 1, f"{len(tables)} candidate tables in the shared cache, expected 1 (both "
                                      "trials load the head's)")

    def _report(self, experiment: Path, env: dict[str, str]) -> None:
        """The sweep's report.html, and the same report again from the store alone (what a user does after
        `ray rsync-down`)."""
        written = experiment / "report.html"
        self.expect(written.is_file(), f"the sweep wrote no {written}")
        out = self.root / "report"
        command = [sys.executable, "-m", "attack_workers", "report", "--store", str(experiment / "store"),
                   "--out", str(out)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
        again = out / "report.html"
        if self.expect(done.returncode == 0 and again.is_file(),
                       f"`python -m attack_workers report` exited {done.returncode}: {done.stderr[-1000:]}"):
            self.say(f"  report: the sweep's report.html {written.stat().st_size // 1024} KiB; `python -m "
                     f"attack_workers report --store ... --out ...` wrote {again.stat().st_size // 1024} KiB")

    def _teardown(self) -> None:
        for node in reversed(self.nodes):  # the worker first, as `ray down` does
            stopped, left = node.stop()
            self.expect(not left, f"{node.role} node: pids {left} still alive after SIGKILL")
            self.say(f"  {node.role} node stopped by pid: {stopped} process(es) signalled, {len(left)} left")
        reap()
        strays = [p for p in descendants(os.getpid()) if alive(p)]
        if strays:
            for pid in strays:
                _signal(pid, signal.SIGKILL)
            self.expect(False, f"processes of this check outside both nodes were left: {strays}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", action="store_true", help="SIGKILL the worker node's raylet mid-sweep")
    parser.add_argument("--timeout", type=float, default=600, help="seconds the sweep may take (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, store) also when it passes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    check = Check(args.fault, args.timeout, args.keep)
    try:
        rc = check.run()
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in check.problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print("PASS" if not check.problems else f"FAIL ({len(check.problems)} problem(s))", flush=True)
    return rc if not check.problems else 1


if __name__ == "__main__":
    sys.exit(main())
