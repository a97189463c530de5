"""No pickled code runs on any load path: a checkpoint with a planted pickle is refused by name
before anything in it is used; the package never calls an unrestricted unpickler."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch

from avdiff.config import AVDiffConfig, load_config
from avdiff.training import checkpoints as ckpt
from avdiff.training import safe_state
from avdiff.training.launcher import launcher_name
from avdiff.training.trainer import train
from test_training import REPO_ROOT, overrides  # noqa: E402  (tests/ is on sys.path)
from tinycorpus import make_tiny_corpus  # noqa: E402

SOURCE_FOLDERS = ("avdiff", "benchmarks", "training", "sampling")


class RunsCode:
    """A pickle payload: unpickling it creates `marker` (what an attacker's shell command would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, AVDiffConfig]:
    """A tiny run with a complete checkpoint-2, and the config that made it."""
    root = tmp_path_factory.mktemp("no-pickle")
    corpus = make_tiny_corpus(root / "corpus", num_items=8, num_frames=12, size=32)
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         overrides(corpus, "training.checkpoint_every=2"))
    assert train(config, root / "run", max_steps=2, cpu=True).status == "finished"
    return root / "run", config


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model", "logs", ".avdiff-train.lock"))
    return target / "checkpoint-2"


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Write `name` and record its size in trainer_state.json, as a careful attacker would."""
    (folder / name).write_bytes(data)
    state = json.loads((folder / ckpt.STATE_NAME).read_text())
    state["files"][name] = len(data)
    (folder / ckpt.STATE_NAME).write_text(json.dumps(state))


def saved_bytes(obj: object, tmp: Path) -> bytes:
    torch.save(obj, tmp)
    return tmp.read_bytes()


def test_checkpoints_hold_no_scheduler_pickle(trained):
    folder = trained[0] / "checkpoint-2"
    assert (folder / safe_state.SCHEDULER_NAME).is_file()
    assert not (folder / safe_state.LEGACY_SCHEDULER_NAME).exists()
    state = json.loads((folder / safe_state.SCHEDULER_NAME).read_text())
    assert state["last_epoch"] == 2 and len(state["base_lrs"]) == 1


@pytest.mark.parametrize("name", ["optimizer.bin", "random_states_0.pkl", "scaler.pt",
                                  safe_state.LEGACY_SCHEDULER_NAME])
@pytest.mark.parametrize("form", ["torch.save", "raw pickle"])
def test_a_planted_pickle_is_refused_and_runs_nothing(trained, tmp_path, name, form):
    run, config = trained
    folder = copy_run(run, tmp_path / "run")
    marker = tmp_path / "code-ran"
    payload = (saved_bytes(RunsCode(marker), tmp_path / "payload.pt") if form == "torch.save"
               else pickle.dumps(RunsCode(marker)))
    replace_file(folder, name, payload)
    if name == safe_state.LEGACY_SCHEDULER_NAME:  # an older checkpoint: its scheduler state is this pickle
        (folder / safe_state.SCHEDULER_NAME).unlink()
        state = json.loads((folder / ckpt.STATE_NAME).read_text())
        del state["files"][safe_state.SCHEDULER_NAME]
        (folder / ckpt.STATE_NAME).write_text(json.dumps(state))
    assert ckpt.incomplete_reason(folder) is None  # it passes the completeness check ...
    with pytest.raises(ckpt.CheckpointError, match=rf"{re.escape(name)}: refusing to resume"):
        train(config, tmp_path / "run", max_steps=3, resume="latest", cpu=True)
    assert not marker.exists()  # ... and still nothing in it ran
    assert ckpt.read_state(folder).step == 2  # and nothing was trained on top of it


def test_corrupt_optimizer_state_is_a_clear_error(trained, tmp_path):
    run, config = trained
    folder = copy_run(run, tmp_path / "run")
    replace_file(folder, "optimizer.bin", b"\x80\x04not a torch file at all")
    with pytest.raises(ckpt.CheckpointError, match=r"optimizer.bin: refusing to resume.*or is corrupt"):
        train(config, tmp_path / "run", max_steps=3, resume="latest", cpu=True)


def test_an_older_checkpoint_with_a_plain_scheduler_pickle_still_resumes(trained, tmp_path):
    """Checkpoints from before scheduler.json hold the scheduler as a pickle of plain data: loaded
    with weights_only=True, it resumes to the same learning rate."""
    run, config = trained
    folder = copy_run(run, tmp_path / "run")
    scheduler_state = json.loads((folder / safe_state.SCHEDULER_NAME).read_text())
    (folder / safe_state.SCHEDULER_NAME).unlink()
    replace_file(folder, safe_state.LEGACY_SCHEDULER_NAME, saved_bytes(scheduler_state, tmp_path / "s.pt"))
    state = json.loads((folder / ckpt.STATE_NAME).read_text())
    del state["files"][safe_state.SCHEDULER_NAME]
    (folder / ckpt.STATE_NAME).write_text(json.dumps(state))
    result = train(config, tmp_path / "run", max_steps=3, resume="latest", cpu=True)
    assert result.status == "finished" and result.step == 3
    resumed = json.loads((tmp_path / "run" / "checkpoint-3" / safe_state.SCHEDULER_NAME).read_text())
    assert resumed["last_epoch"] == 3


def python_sources() -> list[Path]:
    return sorted(p for folder in SOURCE_FOLDERS for p in (REPO_ROOT / folder).rglob("*.py"))


def calls_in(text: str, function: str) -> list[str]:
    """The argument text of every `function(` call in `text` (parentheses balanced)."""
    found = []
    for match in re.finditer(re.escape(function) + r"\(", text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        found.append(text[match.end():end - 1])
    return found


def test_the_package_never_unpickles_freely():
    """torch.load only with weights_only=True; numpy never with allow_pickle=True; no pickle module
    loads; no Accelerate custom checkpoint objects (loaded with weights_only=False)."""
    offences = []
    for path in python_sources():
        text = path.read_text()
        name = path.relative_to(REPO_ROOT)
        offences += [f"{name}: torch.load({args})" for args in calls_in(text, "torch.load")
                     if "weights_only=True" not in args]
        offences += [f"{name}: allow_pickle=True" for _ in re.finditer(r"allow_pickle\s*=\s*True", text)]
        offences += [f"{name}: {m.group(0)}" for m in re.finditer(r"\b(c?[pP]ickle\.loads?|pickle\.Unpickler)\b", text)]
        offences += [f"{name}: register_for_checkpointing" for _ in re.finditer(r"register_for_checkpointing", text)]
    assert not offences, "\n".join(offences)
    assert len(python_sources()) > 50  # the scan did look at the package


def test_the_scan_catches_what_it_looks_for():
    text = "x = torch.load(path, map_location='cpu')\ny = torch.load(p, weights_only=True)\n"
    assert calls_in(text, "torch.load") == ["path, map_location='cpu'", "p, weights_only=True"]


@pytest.mark.parametrize(("command", "expected"), [
    (["/usr/bin/python3", "/venv/bin/accelerate", "launch", "--cpu", "-m", "avdiff", "train"], "accelerate launch"),
    (["/venv/bin/python", "-m", "torch.distributed.run", "--standalone", "train.py"], "torch.distributed.run"),
    (["/venv/bin/python", "/venv/bin/torchrun", "--nproc_per_node", "2", "train.py"], "torchrun"),
    (["bash"], None),
    (["/venv/bin/python", "-m", "avdiff", "train", "--config", "launch.yaml"], None),
])
def test_launchers_are_recognised_by_their_command_line(command, expected):
    assert launcher_name(command) == expected
