"""One training per output folder: a second one refuses clearly; a killed one leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from avdiff.config import AVDiffConfig, load_config
from avdiff.errors import InputError
from avdiff.training.run_lock import LOCK_NAME, RunLock
from avdiff.training.trainer import train


def test_a_second_training_on_a_busy_folder_refuses_and_touches_nothing(tmp_path):
    folder = tmp_path / "run"
    config = load_config(AVDiffConfig, "tiny", [f"data.train_manifest={tmp_path / 'missing.jsonl'}"])
    with RunLock(folder):
        with pytest.raises(InputError, match="another training is running in this folder \\(pid"):
            train(config, folder, max_steps=1, cpu=True)
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # nothing written by the refused run
    with RunLock(folder):  # released on exit: the same folder can be trained again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from avdiff.training.run_lock import RunLock\n"
        f"lock = RunLock({str(folder)!r}).__enter__(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(InputError, match=f"pid {holder.pid}"):
        RunLock(folder).__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    deadline = time.monotonic() + 5
    while True:  # the kernel drops the lock with the process
        try:
            with RunLock(folder):
                break
        except InputError:
            assert time.monotonic() < deadline, "the lock outlived its killed holder"
            time.sleep(0.05)
