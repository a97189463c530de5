"""Fault injection (issue 15): kill -9 in training and in batch jobs, two batch runs on one output
folder, and SIGTERM to the `accelerate launch` process.

The kill loops live in `tests/reliability/fault_injection.py`, which also runs them at length and prints
their counts; here each loop injects `--runs N` faults (`pytest tests/test_faults.py --runs 20`;
default 3). Every child runs on one OpenMP thread.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability import fault_injection as fi  # tests/ is on sys.path
from tinycorpus import make_tiny_corpus


@pytest.fixture(scope="module")
def runner():
    """Every `avdiff` command of these tests runs in a process of its own, forked from a server that
    imported avdiff once (the real CLI, without 5 s of imports per start)."""
    server = fi.ForkServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[dict[str, fi.BatchJob], Path]:
    """generate, enhance and prepare jobs over folders of 8 inputs, and the folder their runs share
    (uninterrupted reference runs are made once there)."""
    workdir = tmp_path_factory.mktemp("batch")
    return fi.make_batch_jobs(workdir), workdir


def test_kill_9_during_training_always_resumes_from_the_newest_complete_checkpoint(tmp_path, fault_runs, runner):
    """Kills at start-up, mid-save and after checkpoints (in turn), then torn newer checkpoints planted
    before the last resume: every resume takes the newest complete checkpoint, no complete checkpoint
    is lost, DIR/model is never half-written, and the final weights equal an uninterrupted run's."""
    counts = fi.train_fault_loop(tmp_path, fault_runs, seed=1, runner=runner)
    assert counts.problems == []
    assert counts.faults == fault_runs
    assert counts.resumes >= 1 and counts.passed_over >= 3  # the planted torn checkpoints were passed over
    assert counts.final_equal


@pytest.mark.parametrize("name", ["generate", "enhance", "prepare"])
def test_kill_9_in_a_batch_job_then_rerun_completes_exactly_the_rest(batch, name, fault_runs, runner):
    """Killed after a random number of outputs: every file under an output name equals the
    uninterrupted run's (no partial output), the re-run skips exactly the finished items, and the
    final folder equals the uninterrupted run's."""
    jobs, workdir = batch
    counts = fi.batch_fault_loop(jobs[name], workdir, fault_runs, seed=2, runner=runner)
    assert counts.problems == []
    assert counts.faults == fault_runs and counts.resumes >= fault_runs
    assert counts.final_equal


@pytest.mark.parametrize("name", ["enhance", "prepare"])
def test_two_batch_runs_on_one_output_folder_do_not_corrupt_each_other(batch, name, runner):
    """Two identical runs at once on one output folder: both succeed, every output equals the
    uninterrupted run's, nothing else is left under an output name."""
    jobs, workdir = batch
    counts = fi.concurrent_runs(jobs[name], workdir, runner)
    assert counts.problems == []
    assert counts.final_equal


def test_a_kill_between_the_manifest_lines_of_one_recordings_pieces_loses_nothing(batch, runner, tmp_path):
    """The state a kill leaves between appending piece 00 and piece 01 of a long recording (every
    WAV written, one line of two; too short a moment for the kill loop to hit): a re-run must list
    every piece, as the uninterrupted run does."""
    jobs, workdir = batch
    reference = fi.reference_run(jobs["prepare"], workdir)
    out = tmp_path / "torn"
    shutil.copytree(workdir / "prepare-reference", out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    last_piece = max(line for line in lines if '"spk/utt0@' in line)
    (out / "manifest.jsonl").write_text("".join(line for line in lines if line != last_piece))
    assert fi.finish(runner(jobs["prepare"].args(out), tmp_path / "rerun.log")) == 0
    assert fi.folder_problems(out, reference, final=True)[0] == []


KILL_AT_FIRST_SIGHT = r"""
import os, signal, sys, threading, time
import avdiff.cli

def watch(path):  # kill -9 this process the moment `path` exists
    while not os.path.exists(path):
        time.sleep(0.0002)
    os.kill(os.getpid(), signal.SIGKILL)

sys.setswitchinterval(1e-5)  # the watcher gets the interpreter within microseconds of waking
threading.Thread(target=watch, args=(sys.argv[1],), daemon=True).start()
raise SystemExit(avdiff.cli.main(sys.argv[2:]))
"""


def killed_at_first_sight(watched: Path, args: list[str | Path]) -> subprocess.CompletedProcess:
    """`avdiff ARGS`, killed -9 by a thread of its own the instant `watched` exists."""
    command = [sys.executable, "-c", KILL_AT_FIRST_SIGHT, str(watched), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=fi.child_env(), timeout=300)


@pytest.mark.parametrize("name", ["checkpoint-1", "model"])
def test_a_training_killed_the_moment_an_output_appears_leaves_it_whole(tmp_path, name):
    """`avdiff train` killed the instant `checkpoint-1` or `model` appears in the run folder: what
    appears under an output name must already be whole."""
    manifest = make_tiny_corpus(tmp_path / "corpus", num_items=8, num_frames=12, size=32)
    run = tmp_path / "run"
    result = killed_at_first_sight(run / name, fi.train_args(manifest, run, 2, False))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]  # it was there to be seen
    assert fi.model_folder_problem(run / name) is None if name == "model" else fi.checkpoint_complete(run / name)


def test_a_batch_killed_the_moment_its_first_output_appears_leaves_it_whole(batch, tmp_path):
    """`avdiff generate` killed the instant its first WAV appears: it already holds every byte."""
    jobs, workdir = batch
    reference = fi.reference_run(jobs["generate"], workdir)
    out = tmp_path / "generated"
    result = killed_at_first_sight(out / "clip0.wav", jobs["generate"].args(out))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert (out / "clip0.wav").read_bytes() == reference["clip0.wav"]


def processes_writing(folder: Path) -> list[int]:
    """Our processes whose command line names `folder` (the launcher and the trainer it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for_steps(log: Path, process: subprocess.Popen, steps: int, timeout: float = 300) -> int:
    """The trainer's step count once its progress bar (in `log`) shows at least `steps`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [int(n) for n in re.findall(r"\| (\d+)/100000 ", log.read_text(errors="replace"))]
        if done and max(done) >= steps:
            return max(done)
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        time.sleep(0.1)
    raise AssertionError(f"no {steps} steps within {timeout} s: {log.read_text(errors='replace')[-2000:]}")


def test_sigterm_to_the_accelerate_launcher_stops_the_trainer_with_a_checkpoint(tmp_path):
    """`accelerate launch` dies at once on SIGTERM; the trainer it started must not train on unseen:
    it finishes its step, saves a checkpoint of that step and exits (avdiff.training.launcher)."""
    from avdiff.training import checkpoints as ckpt

    manifest = make_tiny_corpus(tmp_path / "corpus", num_items=8, num_frames=12, size=32)
    run, log = tmp_path / "run", tmp_path / "launch.log"
    train = ["-m", "avdiff", *fi.train_args(manifest, run, 100000, resume=False)]
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--cpu", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *train,
               "--set", "training.checkpoint_every=100000"]  # the only checkpoint is the interrupted step's
    with open(log, "wb") as handle:
        launcher = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=fi.child_env())
    try:
        seen = wait_for_steps(log, launcher, 3)
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=60)
        deadline = time.monotonic() + 30
        while processes_writing(run) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_writing(run) == [], f"the trainer outlived its launcher: {log.read_text()[-1500:]}"
        latest = ckpt.find_latest_checkpoint(run)
        assert latest is not None, log.read_text(errors="replace")[-1500:]
        assert ckpt.read_state(latest).step >= seen  # the step it was on when the launcher went
    finally:
        for pid in processes_writing(run):  # never leave a trainer running 100000 steps
            os.kill(pid, signal.SIGKILL)
