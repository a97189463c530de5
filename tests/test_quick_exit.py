"""A one-shot job run from the command line ends without the interpreter's tear-down
(`avdiff.cli.entry_point`): its exit handlers still run, everything it printed still arrives, its
outputs are whole, and its exit code is the job's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avdiff.commands import COMMANDS, QUICK_EXIT_COMMANDS

REPO_ROOT = Path(__file__).resolve().parents[1]

ENDED_BY_END_PROCESS = """
import atexit, tempfile
from avdiff.cli import end_process
folder = tempfile.TemporaryDirectory()  # cleaned by an exit handler (weakref.finalize)
print(folder.name)
atexit.register(lambda: print("exit handler ran"))
print("buffered, never flushed by hand", end="")
end_process(3)
print("not reached")
"""


def test_end_process_runs_the_exit_handlers_and_flushes_what_was_printed(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", ENDED_BY_END_PROCESS], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:] == ["buffered, never flushed by handexit handler ran"]  # stdout to a pipe is block-buffered
    assert not Path(lines[0]).exists()  # the temporary folder's finaliser ran


def test_only_one_shot_jobs_end_quickly():
    assert set(QUICK_EXIT_COMMANDS) <= set(COMMANDS)
    assert not {"train", "serve", "demo", "prepare", "synth"} & set(QUICK_EXIT_COMMANDS)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    return save_model_folder(tiny_components(), tmp_path_factory.mktemp("model") / "model")


def avdiff(*args: str | Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "avdiff", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=environment, timeout=300)


def test_a_job_from_the_command_line_prints_writes_and_exits_with_its_code(model: Path, tmp_path: Path):
    from avdiff.media import load_audio

    crops = tmp_path / "clip.npy"
    np.save(crops, np.random.default_rng(0).integers(0, 256, (12, 96, 96), dtype=np.uint8))
    out = tmp_path / "out.wav"
    done = avdiff("generate", "--video", crops, "--model", model, "--steps", "2", "--backend", "torch",
                  "--output", out)
    assert done.returncode == 0, done.stderr
    assert "1 written, 0 already there (skipped), 0 failed" in done.stdout
    assert len(load_audio(out)) > 0 and "\ncommand: generate\n" in out.with_suffix(".settings.yaml").read_text()

    failed = avdiff("generate", "--video", tmp_path / "missing.npy", "--model", model, "--output", tmp_path / "x.wav")
    assert failed.returncode != 0 and "missing.npy" in failed.stdout + failed.stderr
