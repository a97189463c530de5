"""A run folder on its own: `avdiff export` without the training data (the checkpoint records
whether the run had video), and `--resume auto` for jobs a cluster scheduler requeues (the newest
complete checkpoint if any, else a fresh start, saying which)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from avdiff.cli import main as avdiff_main
from avdiff.config import AVDiffConfig, load_config
from avdiff.errors import InputError
from avdiff.training import checkpoints as ckpt
from avdiff.training.export import export_checkpoint
from avdiff.training.trainer import train
from tinycorpus import make_tiny_corpus  # noqa: E402  (tests/ is on sys.path)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = REPO_ROOT / "configs" / "tiny.yaml"
TINY_OVERRIDES = [
    "data.crop_frames=32", "data.crop_size=32", "data.num_workers=0", "training.batch_size=2",
    "training.warmup_steps=2", "training.validate_every=0", "training.checkpoint_every=2",
    "training.sigma_data_batches=1", "score_model.unet.block_out_channels=[8,16]",
    "score_model.unet.attention_levels=[false,false]", "score_model.unet.norm_num_groups=4",
    "score_model.unet.attention_head_dim=8",
]


def settings(manifest: Path) -> list[str]:
    return [f"data.train_manifest={manifest}", *TINY_OVERRIDES]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A 2-step audio-visual run with checkpoint-2, on a corpus of its own (tests move it away)."""
    root = tmp_path_factory.mktemp("records")
    manifest = make_tiny_corpus(root / "data", num_items=4, num_frames=12, size=32)
    train(load_config(AVDiffConfig, TINY, settings(manifest)), root / "run", max_steps=2, cpu=True)
    return {"run": root / "run", "data": root / "data", "manifest": manifest}


@contextmanager
def data_gone(data: Path) -> Iterator[None]:
    """The training data folder is away (deleted, as far as the code can tell) inside the block."""
    away = data.with_name(data.name + "-away")
    data.rename(away)
    try:
        yield
    finally:
        away.rename(data)


def copy_run(trained: dict[str, Path], tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run, ignore=shutil.ignore_patterns("model", "logs"))
    return run


def test_export_needs_no_training_data(trained, tmp_path):
    run = trained["run"]
    assert ckpt.read_state(run / "checkpoint-2").audio_visual is True  # recorded at training time
    with data_gone(trained["data"]):
        assert avdiff_main(["export", "--run", str(run), "--output", str(tmp_path / "exported")]) == 0
    exported = json.loads((tmp_path / "exported" / "avdiff_pipeline.json").read_text())
    assert exported["audio_visual"] is True
    assert exported == json.loads((run / "model" / "avdiff_pipeline.json").read_text())


def test_an_older_checkpoint_reads_the_data_and_says_so(trained, tmp_path, caplog):
    run = copy_run(trained, tmp_path)
    state_path = run / "checkpoint-2" / ckpt.STATE_NAME
    state = json.loads(state_path.read_text())
    del state["audio_visual"]  # as written before the record existed (sizes of the other files unchanged)
    state_path.write_text(json.dumps(state))
    assert ckpt.incomplete_reason(run / "checkpoint-2") is None and ckpt.read_state(run / "checkpoint-2").audio_visual is None
    with caplog.at_level(logging.WARNING, logger="avdiff.training.export"):
        export_checkpoint(run, "latest", tmp_path / "exported")
    assert json.loads((tmp_path / "exported" / "avdiff_pipeline.json").read_text())["audio_visual"] is True
    assert "does not record whether the run had video" in caplog.text and str(trained["manifest"]) in caplog.text
    with data_gone(trained["data"]), pytest.raises(InputError, match="does not record whether the run had video.*"
                                                   "manifest not found"):
        export_checkpoint(run, "latest", tmp_path / "again")


def test_resume_auto_starts_fresh_without_a_checkpoint(trained, tmp_path, capsys):
    run = tmp_path / "fresh"
    command = ["train", "--config", str(TINY), "--output", str(run), "--max-steps", "1", "--cpu",
               *sum((["--set", o] for o in settings(trained["manifest"])), [])]
    assert avdiff_main([*command, "--resume", "latest"]) == 2  # the error stays for `latest`
    assert "no complete checkpoint-N folder" in capsys.readouterr().err
    assert avdiff_main([*command, "--resume", "auto"]) == 0
    log = (run / "train.log").read_text()
    assert f"--resume auto: no complete checkpoint in {run} yet; starting fresh" in log
    assert "resumed from" not in log and ckpt.read_state(run / "checkpoint-1").step == 1


def test_resume_auto_continues_from_the_newest_complete_checkpoint(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    (run / "checkpoint-4").mkdir()  # a save cut short: passed over
    config = load_config(AVDiffConfig, TINY, settings(trained["manifest"]))
    result = train(config, run, max_steps=3, resume="auto", cpu=True)
    assert result.status == "finished" and result.step == 3
    log = (run / "train.log").read_text()
    assert f"--resume auto: resuming from {run / 'checkpoint-2'}" in log and f"resumed from {run / 'checkpoint-2'}" in log
