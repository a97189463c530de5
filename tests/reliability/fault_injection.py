"""Fault injection: kill -9 training and batch jobs at random (seeded) moments, re-run, and count.

Training: a tiny config that checkpoints every step runs as `avdiff train --cpu`; it is killed
with SIGKILL at random moments, taken in turn: a random delay after a checkpoint 1-3 steps on has
appeared (mid-step, mid-rotation of old checkpoints), while a checkpoint is being written, during
start-up and resume loading, and (the last kill of more than 3) during the export; then resumed
with `--resume latest`, again and again, until it finishes. Before the last resume, torn newer
checkpoints are planted. After every kill the run folder is read with a completeness check of
this script's own (not avdiff's): the next run must resume from the newest complete checkpoint, a
complete checkpoint must never disappear, `DIR/model` must never exist half-written, and at the
end the exported weights must equal an uninterrupted run's byte for byte (CPU, one thread, no
data workers: the run is deterministic).

Batch jobs (`generate`, `enhance` and `prepare --layout speech` over a folder of several items):
killed after a random number of outputs exist, re-run (and killed again, as many times as asked):
every file under an output name must equal the uninterrupted run's byte for byte (temporary files
may remain, never under an output name), a re-run must skip exactly the finished items, and the
final folder must equal the reference. `concurrent_runs` starts two runs on one output folder at
once: both must succeed and every output must equal the reference.

    PYTHONPATH=tests .venv/bin/python -m reliability.fault_injection --runs 20 [--spawn]

(from the repository root; tests/ on the import path, as pytest puts it, for the tiny corpus and
model builders the tests use) prints the counts table (faults injected, resumes, corrupt loads, lost outputs, final weights
equal). Every run is the real `avdiff` command line in a process of its own, forked from a server
that imported avdiff once (`--spawn`: a fresh `python -m avdiff` each time, 5 s more per run).
`tests/test_faults.py` runs the same loops with few faults (`pytest --runs N` for more). OUTPUT/record.json
(`benchmarks.common.record`) keeps the counts with the run's provenance.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from tinycorpus import make_tiny_corpus  # tests/: the tiny corpus and model builders the tests use
from tinymodels import tiny_components

REPO_ROOT = Path(__file__).resolve().parents[2]

TINY_CONFIG = REPO_ROOT / "configs" / "tiny.yaml"
TRAIN_SETTINGS = [  # a ~0.1 M-parameter model that trains at several steps a second on one core
    "data.crop_frames=32", "data.crop_size=32", "data.num_workers=0",
    "training.batch_size=2", "training.warmup_steps=2", "training.log_every=1", "training.validate_every=0",
    "training.learning_rate=1e-3", "training.ema_decay=0.9",
    "training.checkpoint_every=1", "training.keep_checkpoints=2",
    "score_model.unet.block_out_channels=[8,16]", "score_model.unet.attention_levels=[false,false]",
    "score_model.unet.norm_num_groups=4", "score_model.unet.attention_head_dim=8",
]
STATE_NAME = "trainer_state.json"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
RESUMED = re.compile(r"resumed from \S*checkpoint-(\d+)")
WAIT_S = 300.0  # the longest any one run may take before the loop gives up on it


@dataclass
class FaultCounts:
    """What one fault loop did, and what broke: `problems` must stay empty."""

    job: str
    faults: int = 0  # SIGKILLs that hit a running process
    resumes: int = 0  # re-runs seen continuing from saved work (a checkpoint, or finished outputs skipped)
    passed_over: int = 0  # incomplete checkpoints / temporary files present when a re-run started
    corrupt_loads: list[str] = field(default_factory=list)  # resumed from anything but the newest complete state
    lost_outputs: list[str] = field(default_factory=list)  # finished work gone, or partial files under output names
    other: list[str] = field(default_factory=list)  # tracebacks, wrong exit codes, finished items redone
    final_equal: bool = False  # the end result equals the uninterrupted run's, byte for byte
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        """Every violation found, in words."""
        return self.corrupt_loads + self.lost_outputs + self.other


# ----------------------------------------------------------------------------- processes


def child_env() -> dict[str, str]:
    """One OpenMP thread that sleeps when idle: deterministic kernels, and no fight for shared cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO_ROOT)}


class Process(Protocol):
    """What the loops need of a running `avdiff` command (subprocess.Popen has it)."""

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


Runner = Callable[[list[str | Path], Path], Process]  # (avdiff arguments, log file) -> the running command


def spawn(args: list[str | Path], log: Path) -> Process:
    """`python -m avdiff ARGS` in a fresh interpreter, stdout and stderr in `log` (a file: a full pipe
    could stall it). Faithful, but each start imports torch and diffusers again (about 5 s)."""
    with open(log, "wb") as handle:
        return subprocess.Popen(avdiff_command(*args), stdout=handle, stderr=subprocess.STDOUT, env=child_env())


def avdiff_command(*args: str | Path) -> list[str]:
    """`python -m avdiff ARGS` with this interpreter."""
    return [sys.executable, "-m", "avdiff", *map(str, args)]


FORK_SERVER = r"""
import json, os, signal, sys, traceback
import avdiff.cli, avdiff.commands.train, avdiff.pipeline.pipeline, avdiff.prepare, avdiff.training.trainer
import avdiff.commands.enhance, avdiff.commands.generate, avdiff.commands.prepare  # what every command loads
import avdiff.diffusion.formulation, avdiff.models.lip_encoder, avdiff.models.score_unet, avdiff.posterior.udiffse_plus
import diffusers.hooks  # loaded by a model's first .to() (with torch._dynamo)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped at once: a gone pid has ended
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0), os.dup2(log, 1), os.dup2(log, 2)
    sys.argv = ["avdiff", *request["args"]]
    try:
        code = avdiff.cli.main(request["args"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush(), sys.stderr.flush()
    with open(request["log"] + ".exit.tmp", "w") as handle:
        handle.write(str(code))
    os.replace(request["log"] + ".exit.tmp", request["log"] + ".exit")
    raise SystemExit(code)
"""


class ForkedProcess:
    """An `avdiff` command forked from the fork server: a whole process of its own (kill -9 ends it
    alone); its exit code comes from a file it writes last, since the server reaps it."""

    def __init__(self, pid: int, log: Path, args: list[str | Path]) -> None:
        self.pid, self.exit_file, self.args = pid, Path(f"{log}.exit"), args
        self.signalled: int | None = None

    def poll(self) -> int | None:
        """None while it runs; then its exit code, or minus the signal that ended it."""
        try:
            os.kill(self.pid, 0)
            return None
        except ProcessLookupError:
            pass
        if self.exit_file.is_file():
            return int(self.exit_file.read_text())
        return -(self.signalled or signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code, once it has ended (subprocess.TimeoutExpired after `timeout` s)."""
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.args), timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        """Send `sig` (if it still runs)."""
        self.signalled = sig
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """A process that has imported avdiff once and forks a child per command: the same `avdiff.cli.main`
    as `python -m avdiff`, in a process of its own, without the 5 s of imports per start (what makes
    many kills affordable). Nothing runs torch in the server before it forks."""

    def __init__(self) -> None:
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, env=child_env())

    def __call__(self, args: list[str | Path], log: Path) -> Process:
        """Fork `avdiff ARGS`, stdout and stderr in `log`."""
        assert self.server.stdin is not None and self.server.stdout is not None
        Path(f"{log}.exit").unlink(missing_ok=True)
        self.server.stdin.write(json.dumps({"args": [str(a) for a in args], "log": str(log)}) + "\n")
        self.server.stdin.flush()
        return ForkedProcess(int(self.server.stdout.readline()), log, args)

    def close(self) -> None:
        """End the server (its children run on to their end)."""
        if self.server.stdin is not None:
            self.server.stdin.close()
        self.server.wait(timeout=60)


def kill_when(process: Process, ready: Callable[[], bool], delay: float) -> bool:
    """SIGKILL `process` `delay` seconds after `ready()` first holds; False if it exited first."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"not ready after {WAIT_S:.0f} s")
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    return process.wait(timeout=WAIT_S) == -signal.SIGKILL


def finish(process: Process) -> int:
    """Wait for an unkilled run (at most WAIT_S); its exit code."""
    try:
        return process.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=WAIT_S)
        return -signal.SIGKILL


def one_thread() -> Callable[[], None]:
    """Run this process's torch on one thread, like the children; returns the undo."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- training


def checkpoint_complete(folder: Path) -> bool:
    """This script's own completeness check (not avdiff's): trainer_state.json parses, lists every
    file of the folder with its size, and every safetensors file opens."""
    from safetensors import SafetensorError, safe_open

    try:
        files = json.loads((folder / STATE_NAME).read_text())["files"]
        present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {STATE_NAME}
        if set(files) != present or any((folder / n).stat().st_size != s for n, s in files.items()):
            return False
        for path in folder.rglob("*.safetensors"):
            with safe_open(str(path), "pt") as handle:
                handle.keys()
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return False
    return True


def checkpoints(run: Path) -> tuple[list[int], int]:
    """Steps of the complete checkpoints (newest first) and the number of incomplete ones beside them
    (checkpoint folders failing the check, and `.checkpoint-N.tmp` folders)."""
    complete, incomplete = [], 0
    for path in run.glob("*checkpoint-*"):
        match = CHECKPOINT.match(path.name)
        if match and checkpoint_complete(path):
            complete.append(int(match.group(1)))
        elif path.is_dir():
            incomplete += 1
    return sorted(complete, reverse=True), incomplete


def newest_published(run: Path) -> int:
    """The highest N of a `checkpoint-N` folder (cheap: no reading; a trigger for kills)."""
    steps = [int(m.group(1)) for p in run.glob("checkpoint-*") if (m := CHECKPOINT.match(p.name))]
    return max(steps, default=0)


def train_settings(manifest: Path) -> list[str]:
    """The `--set` values of the tiny training on `manifest`."""
    return [f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}", *TRAIN_SETTINGS]


def train_args(manifest: Path, run: Path, max_steps: int, resume: bool) -> list[str]:
    """`avdiff train` arguments: the tiny config on `manifest`, resuming from the newest checkpoint if asked."""
    sets = train_settings(manifest)
    args = ["train", "--config", str(TINY_CONFIG), "--output", str(run), "--max-steps", str(max_steps), "--cpu",
            *sum((["--set", s] for s in sets), [])]
    return args + (["--resume", "latest"] if resume else [])


def reference_training(manifest: Path, run: Path, max_steps: int) -> Path:
    """An uninterrupted run of the same training, in this process on one thread; its model folder."""
    from avdiff.config import AVDiffConfig, load_config
    from avdiff.training.trainer import train

    undo = one_thread()
    try:
        result = train(load_config(AVDiffConfig, TINY_CONFIG, train_settings(manifest)), run, max_steps=max_steps, cpu=True)
    finally:
        undo()
    return result.model_dir


def model_folder_problem(folder: Path) -> str | None:
    """Why `folder` (a model folder under its output name) is not whole, or None if it is."""
    from safetensors import SafetensorError, safe_open

    try:
        json.loads((folder / "avdiff_pipeline.json").read_text())
        if not (folder / "config.yaml").is_file():  # the training config, written beside the network
            return f"{folder}: no config.yaml"
        weights = sorted(folder.rglob("*.safetensors"))
        if len(weights) < 2:
            return f"{folder}: {len(weights)} weight files"
        for path in weights:
            with safe_open(str(path), "pt") as handle:
                handle.keys()
    except (OSError, ValueError, SafetensorError) as error:
        return f"{folder}: {type(error).__name__}: {error}"
    return None


KILL_MOMENTS = ("after a checkpoint", "mid-save", "start-up")  # taken in turn, with random delays
LAST_KILL = "mid-export"  # the last kill of more than three: the training has ended, DIR/model is being written


def saving(run: Path, newest: int) -> bool:
    """Whether a checkpoint newer than `newest` is being written: its temporary folder has files
    but not yet trainer_state.json (written last, just before the rename)."""
    for path in run.glob(".checkpoint-*.tmp"):
        try:
            names = {p.name for p in path.iterdir()}
        except FileNotFoundError:  # renamed or removed while we looked
            continue
        if int(path.name.split("-")[1].split(".")[0]) > newest and names and STATE_NAME not in names:
            return True
    return False


def train_kill_plan(moment: str, rng: random.Random, run: Path, newest: int,
                    max_steps: int) -> tuple[Callable[[], bool], float]:
    """When to kill the next run (`KILL_MOMENTS`, `LAST_KILL`): a random delay after a checkpoint 1-3
    steps on has appeared (mid-step, mid-rotation of old checkpoints), while a checkpoint is being
    written, at a random moment of start-up (set-up, loading the checkpoint), or while the model
    folder is being exported."""
    if moment == LAST_KILL:  # the final checkpoint is out: rotation, export and exit follow
        return (lambda: newest_published(run) >= max_steps), rng.uniform(0.0, 0.015)
    if moment == "start-up":  # train.log grows with the first line the trainer logs, before it loads anything
        size = (run / "train.log").stat().st_size if (run / "train.log").is_file() else 0
        return (lambda: (run / "train.log").is_file() and (run / "train.log").stat().st_size > size), rng.uniform(0, 0.5)
    if moment == "mid-save":
        return (lambda: saving(run, newest)), rng.uniform(0.0, 0.01)
    target = min(max_steps, newest + rng.randint(1, 3))
    return (lambda: newest_published(run) >= target), rng.uniform(0.0, 0.3)


def plant_torn_checkpoints(run: Path, newest: int) -> int:
    """Newer checkpoints than `newest` as a torn write could leave them (a file system that lost the
    order of writes): a half trainer_state.json, a full one beside truncated weights, and a temporary
    folder. A resume must pass over all three; returns 3."""
    import shutil

    source = run / f"checkpoint-{newest}"
    torn = [run / f"checkpoint-{newest + 1}", run / f"checkpoint-{newest + 2}", run / f".checkpoint-{newest + 3}.tmp"]
    for folder in torn:
        shutil.copytree(source, folder, dirs_exist_ok=True)
    state = torn[0] / STATE_NAME
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    weights = next(torn[1].glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (torn[2] / STATE_NAME).unlink()
    return len(torn)


def check_training_run(counts: FaultCounts, output: str, expected: int | None, incomplete: int,
                       killed: bool) -> None:
    """One run's log against the folder as it was before it: it resumed (if it got that far) from the
    newest complete checkpoint, and printed no traceback."""
    resumed = [int(step) for step in RESUMED.findall(output)]
    if resumed:
        counts.resumes += 1
        counts.passed_over += incomplete
        if resumed[0] != expected:
            counts.corrupt_loads.append(f"resumed from checkpoint-{resumed[0]}; the newest complete one was {expected}")
    elif expected is not None and not killed:
        counts.other.append(f"a finished run with checkpoint-{expected} present did not say it resumed")
    if "Traceback" in output:
        counts.other.append("traceback: " + output[output.index("Traceback"):][-600:])


def check_after_kill(counts: FaultCounts, run: Path, newest_before: int | None) -> None:
    """After a kill: no complete checkpoint lost, and DIR/model either absent or whole."""
    complete, _ = checkpoints(run)
    if newest_before is not None and (not complete or complete[0] < newest_before):
        counts.lost_outputs.append(f"the newest complete checkpoint went from {newest_before} to "
                                   f"{complete[0] if complete else 'none'}")
    if (run / "model").exists() and (problem := model_folder_problem(run / "model")):
        counts.lost_outputs.append(f"partial model folder: {problem}")


def same_files(reference: Path, actual: Path, pattern: str) -> list[str]:
    """Files matching `pattern` under `reference` that are missing or differ under `actual`."""
    differ = []
    for path in sorted(reference.rglob(pattern)):
        other = actual / path.relative_to(reference)
        if not other.is_file() or other.read_bytes() != path.read_bytes():
            differ.append(str(path.relative_to(reference)))
    return differ


def training_attempt(counts: FaultCounts, runner: Runner, manifest: Path, run: Path, max_steps: int,
                     log: Path, moment: str | None, rng: random.Random, plant: bool = False) -> bool:
    """One run of the training into `run` (resumed if it has a complete checkpoint; torn newer ones
    planted first if asked), killed at `moment` (None: not killed); checked. True if it was killed."""
    complete, incomplete = checkpoints(run) if run.exists() else ([], 0)
    expected = complete[0] if complete else None
    if plant and expected is not None:
        incomplete += plant_torn_checkpoints(run, expected)
    process = runner(train_args(manifest, run, max_steps, expected is not None), log)
    killed = moment is not None and kill_when(process, *train_kill_plan(moment, rng, run, expected or 0, max_steps))
    code = None if killed else finish(process)
    check_training_run(counts, log.read_text(errors="replace"), expected, incomplete, killed)
    if killed:
        counts.faults += 1
        check_after_kill(counts, run, expected)
    elif code != 0:
        counts.other.append(f"{log.name}: exit code {code} instead of 0")
    return killed


def train_fault_loop(workdir: Path, runs: int, seed: int = 0, runner: Runner = spawn) -> FaultCounts:
    """Kill a tiny training `runs` times at random moments, resuming it each time (a kill that comes
    too late, the run having ended, ends the kills); then plant torn newer checkpoints and resume to
    the end once more; compare its weights with an uninterrupted run's."""
    began, rng, counts = time.monotonic(), random.Random(seed), FaultCounts("train (kill -9, --resume latest)")
    manifest = make_tiny_corpus(workdir / "corpus", num_items=8, num_frames=12, size=32)
    max_steps = 3 * runs + 6  # each kill comes at most 3 steps on (+3 planted): the run outlasts the kills
    reference = reference_training(manifest, workdir / "reference", max_steps)
    run = workdir / "killed"
    for attempt in range(runs):
        moment = LAST_KILL if attempt == runs - 1 and runs > len(KILL_MOMENTS) else KILL_MOMENTS[attempt % 3]
        if not training_attempt(counts, runner, manifest, run, max_steps, workdir / f"train{attempt}.log", moment, rng):
            break
    training_attempt(counts, runner, manifest, run, max_steps, workdir / "train-last.log", None, rng, plant=True)
    differ = same_files(reference, run / "model", "*.safetensors")
    counts.final_equal = (run / "model").is_dir() and not differ
    if differ:
        counts.lost_outputs.append(f"exported weights differ from the uninterrupted run's: {differ}")
    counts.seconds = time.monotonic() - began
    return counts


# ----------------------------------------------------------------------------- batch jobs


@dataclass
class BatchJob:
    """A batch command over a folder of inputs, as the fault loops drive it."""

    name: str
    args: Callable[[Path], list[str | Path]]  # the avdiff arguments that write into an output folder
    items: int  # how many inputs the folder holds
    summary: re.Pattern  # the last line of a run that ended: groups (items done, items skipped)
    jitter: float  # the largest random delay (s) between seeing outputs and the kill


def wav_job(name: str, args: Callable[[Path], list[str | Path]], items: int) -> BatchJob:
    """`generate` / `enhance`: one WAV per input."""
    return BatchJob(name, args, items, re.compile(r"(\d+) written, (\d+) already there"), 0.15)


def make_batch_jobs(workdir: Path, items: int = 8) -> dict[str, BatchJob]:
    """generate and enhance (tiny model, 2 steps) and prepare --layout speech, each over `items` inputs."""
    from avdiff.pipeline import save_model_folder

    model = save_model_folder(tiny_components(), workdir / "model")
    rng = np.random.default_rng(0)
    videos, noisy, raw = workdir / "videos", workdir / "noisy", workdir / "speech" / "spk"
    for folder in (videos, noisy, raw):
        folder.mkdir(parents=True, exist_ok=True)
    seconds = np.arange(32000) / 16000
    for index in range(items):
        np.save(videos / f"clip{index}.npy", rng.integers(0, 256, (50, 32, 32), dtype=np.uint8))
        tone = 0.3 * np.sin(2 * np.pi * (180 + 40 * index) * seconds) + 0.05 * rng.standard_normal(len(seconds))
        sf.write(noisy / f"noisy{index}.wav", tone.astype(np.float32), 16000)
        sf.write(raw / f"utt{index}.wav", speech_like(rng, index), 44100, subtype="PCM_16")
    common = ["--model", model, "--steps", "2", "--seed", "3"]
    return {
        "generate": wav_job("generate", lambda out: ["generate", "--video", videos, "--output", out, *common], items),
        "enhance": wav_job("enhance", lambda out: ["enhance", "--noisy", noisy, "--output", out, *common], items),
        "prepare": BatchJob("prepare", lambda out: ["prepare", "--layout", "speech", "--input", raw.parent,
                                                    "--output", out, "--no-progress"],
                            items, re.compile(r"prepared (\d+), skipped (\d+)"), 0.02),
    }


def speech_like(rng: np.random.Generator, index: int, seconds: float = 22.0, rate: int = 44100) -> np.ndarray:
    """A 44.1 kHz recording, longer than prepare's 20 s limit (so it is cut into pieces, appended to
    the manifest together), loud enough and not clipped."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 0.7 * t + index)
    return (envelope * 0.3 * np.sin(2 * np.pi * (140 + 15 * index) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def run_in_process(args: list[str | Path]) -> int:
    """An uninterrupted reference run through the CLI in this process, on one thread."""
    from avdiff.cli import main

    undo = one_thread()
    try:
        return main([str(a) for a in args])
    finally:
        undo()


def reference_files(reference: Path) -> dict[str, bytes]:
    """Every file of an uninterrupted run's output folder, by relative path."""
    return {str(p.relative_to(reference)): p.read_bytes() for p in sorted(reference.rglob("*")) if p.is_file()}


def is_temporary(name: str) -> bool:
    """A name that no reader takes for an output: hidden, or marked temporary."""
    return Path(name).name.startswith(".") or "tmp" in Path(name).name.lower()


def finished_items(out: Path, reference: dict[str, bytes]) -> set[str]:
    """The items a folder holds as finished: WAVs at their output names, or, for prepare, the
    recordings all of whose pieces (as the uninterrupted run cut them) have a complete manifest line."""
    if "manifest.jsonl" not in reference:
        return {name for name in reference if name.endswith(".wav") and (out / name).is_file()}
    manifest = out / "manifest.jsonl"
    lines = manifest.read_bytes().split(b"\n")[:-1] if manifest.is_file() else []
    listed = {json.loads(line)["id"] for line in lines if line.strip()}
    pieces: dict[str, set[str]] = {}
    for line in reference["manifest.jsonl"].splitlines():
        piece = json.loads(line)["id"]
        pieces.setdefault(piece.split("@")[0], set()).add(piece)
    return {recording for recording, ids in pieces.items() if ids <= listed}


def folder_problems(out: Path, reference: dict[str, bytes], final: bool) -> tuple[list[str], int]:
    """Files under output names that are not the reference's (mid-run: a manifest may lack lines and
    end in one cut-off line), files that are neither outputs nor temporaries, and the temporaries."""
    problems, temporaries = [], 0
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        data = path.read_bytes()
        if name not in reference:
            temporaries += is_temporary(name)
            problems += [] if is_temporary(name) else [f"{name}: not an output of the uninterrupted run"]
        elif name.endswith(".jsonl") and not final:
            known = {canonical(line) for line in reference[name].splitlines()}
            problems += [f"{name}: a line the uninterrupted run does not have: {line[:80]!r}"
                         for line in data.split(b"\n")[:-1] if canonical(line) not in known][:1]
        elif data != reference[name]:
            problems.append(f"{name}: {len(data)} bytes differ from the uninterrupted run's {len(reference[name])}")
    if final:
        problems += [f"{name}: missing" for name in reference if not (out / name).is_file()]
    return problems, temporaries


def canonical(line: bytes) -> str | None:
    """A JSON line as sorted-key JSON (None if it does not parse), to compare lines written apart."""
    try:
        return json.dumps(json.loads(line), sort_keys=True)
    except ValueError:
        return None


def reference_run(job: BatchJob, workdir: Path) -> dict[str, bytes]:
    """The files of an uninterrupted run of `job` (made once per workdir, in this process)."""
    folder = workdir / f"{job.name}-reference"
    if not folder.is_dir():
        code = run_in_process(job.args(folder))
        if code != 0:
            raise RuntimeError(f"the uninterrupted {job.name} run exited with {code}")
    return reference_files(folder)


PROCESSED = re.compile(r"^(\S+): .* -> ", re.MULTILINE)  # generate / enhance: one line per item written


def check_batch_run(counts: FaultCounts, job: BatchJob, output: str, before: set[str], killed: bool,
                    code: int | None) -> None:
    """One run's output: no finished item redone, no traceback, and if it ended: exit code 0 with
    exactly the finished items skipped and the rest done."""
    redone = {f"{item}.wav" for item in PROCESSED.findall(output)} & before
    if redone:
        counts.other.append(f"{job.name}: finished outputs redone: {sorted(redone)}")
    if "Traceback" in output:
        counts.other.append(f"{job.name}: traceback: " + output[output.index("Traceback"):][-600:])
    if killed:
        return
    match = job.summary.search(output)
    if code != 0 or match is None:
        counts.other.append(f"{job.name}: exit code {code}; output ends: {output[-400:]!r}")
    elif (int(match.group(2)), int(match.group(1)) + int(match.group(2))) != (len(before), job.items):
        counts.other.append(f"{job.name}: '{match.group(0)}' with {len(before)} of {job.items} items finished before")


def kill_round(job: BatchJob, out: Path, reference: dict[str, bytes], rng: random.Random, budget: int,
               counts: FaultCounts, runner: Runner) -> bool:
    """Run `job` into a fresh `out`, killing it (up to `budget` times) after a random number of its
    outputs exist and re-running it, until a run ends; True if the folder then equals the reference."""
    for attempt in itertools.count():
        before = finished_items(out, reference)
        counts.resumes += bool(before)
        log = out.with_name(f"{out.name}-{attempt}.log")
        process = runner(job.args(out), log)
        killed = False
        if budget > 0 and len(before) + 1 < job.items:
            target = rng.randint(len(before) + 1, job.items - 1)
            killed = kill_when(process, lambda: len(finished_items(out, reference)) >= target,
                               rng.uniform(0.0, job.jitter))
        code = None if killed else finish(process)
        check_batch_run(counts, job, log.read_text(errors="replace"), before, killed, code)
        problems, temporaries = folder_problems(out, reference, final=not killed)
        lost = before - finished_items(out, reference)
        counts.lost_outputs += problems + [f"{job.name}: finished outputs gone: {sorted(lost)}"] * bool(lost)
        if not killed:
            return not problems
        counts.faults, budget = counts.faults + 1, budget - 1
        counts.passed_over += temporaries
    raise AssertionError("unreachable")


def batch_fault_loop(job: BatchJob, workdir: Path, runs: int, seed: int = 0, runner: Runner = spawn) -> FaultCounts:
    """Kill `job` `runs` times in all (several per output folder, fresh folders as needed), re-running
    after each kill; every end result must equal the uninterrupted run's."""
    began, rng = time.monotonic(), random.Random(seed)
    counts = FaultCounts(f"{job.name} (kill -9, re-run)")
    reference = reference_run(job, workdir)
    equal = []
    for round_number in range(runs + 1):
        if round_number and counts.faults >= runs:
            break
        out = workdir / f"{job.name}-killed{round_number}"
        equal.append(kill_round(job, out, reference, rng, runs - counts.faults, counts, runner))
    counts.final_equal = all(equal)
    counts.seconds = time.monotonic() - began
    return counts


def concurrent_runs(job: BatchJob, workdir: Path, runner: Runner = spawn) -> FaultCounts:
    """Two runs of `job` on one output folder at the same time: both must end well, and every output
    must equal the uninterrupted run's (nothing else under an output name, no failures.jsonl)."""
    began, counts = time.monotonic(), FaultCounts(f"{job.name} (two runs at once)")
    reference = reference_run(job, workdir)
    out = workdir / f"{job.name}-concurrent"
    processes = [runner(job.args(out), workdir / f"{job.name}-concurrent{k}.log") for k in range(2)]
    for k, process in enumerate(processes):
        code, output = finish(process), (workdir / f"{job.name}-concurrent{k}.log").read_text(errors="replace")
        if code != 0 or "Traceback" in output or "failed: " in output:
            counts.other.append(f"{job.name}: run {k} exited with {code}; output ends: {output[-300:]!r}")
    problems, counts.passed_over = folder_problems(out, reference, final=True)
    counts.lost_outputs += problems
    counts.final_equal = not problems
    counts.seconds = time.monotonic() - began
    return counts


# ----------------------------------------------------------------------------- the table

COLUMNS = ("job", "faults injected", "resumes", "incomplete passed over", "corrupt loads", "lost outputs",
           "other problems", "final equal", "time (s)")


def table(rows: list[FaultCounts]) -> str:
    """The counts as a markdown table, one row per loop."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for c in rows:
        cells = [c.job, c.faults, c.resumes, c.passed_over, len(c.corrupt_loads), len(c.lost_outputs), len(c.other),
                 "yes" if c.final_equal else "no", f"{c.seconds:.0f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def run_all(workdir: Path, runs: int, seed: int, jobs: list[str], runner: Runner) -> list[FaultCounts]:
    """The chosen loops, each in its own sub-folder of `workdir`."""
    rows = []
    if "train" in jobs:
        rows.append(train_fault_loop(workdir / "train", runs, seed, runner))
    batch = make_batch_jobs(workdir / "batch") if set(jobs) - {"train"} else {}
    for name in ("generate", "enhance", "prepare"):
        if name in jobs:
            rows.append(batch_fault_loop(batch[name], workdir / "batch", runs, seed, runner))
    for name in ("enhance", "prepare"):
        if "concurrent" in jobs:
            rows.append(concurrent_runs(batch[name], workdir / "batch", runner))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the loops, print the table and every problem; exit 1 if there was any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="kill -9 faults per loop (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--jobs", nargs="+", default=["train", "generate", "enhance", "prepare", "concurrent"],
                        choices=["train", "generate", "enhance", "prepare", "concurrent"])
    parser.add_argument("--spawn", action="store_true",
                        help="start every run as a fresh `python -m avdiff` (default: forked from a server "
                        "that imported avdiff once, 5 s less per run)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the folders here (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "fault-injection",
                        help="folder for record.json (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fault-injection-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        began, server = time.monotonic(), None if args.spawn else ForkServer()
        try:
            rows = run_all(workdir, args.runs, args.seed, args.jobs, spawn if server is None else server)
        finally:
            if server is not None:
                server.close()
        print(table(rows))
        print(f"\n--runs {args.runs} --seed {args.seed}{' --spawn' * args.spawn}: {time.monotonic() - began:.0f} s")
        for row in rows:
            for problem in row.problems:
                print(f"{row.job}: {problem}")
    from benchmarks.common.record import record  # the repository root is on the path of `python -m` run there

    record(args.output, args, {"rows": [asdict(row) for row in rows]})
    return 1 if any(row.problems for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
