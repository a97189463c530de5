"""Training with Accelerate: two CPU processes, exact resume after SIGTERM, non-finite steps,
crash-safe checkpoints, the exported model folder, and the `avdiff train` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from avdiff.cli import main as avdiff_main
from avdiff.config import AVDiffConfig, load_config
from avdiff.diffusion.loss import DenoisingScoreMatchingLoss
from avdiff.pipeline import load_model_folder
from avdiff.training import checkpoints as ckpt
from avdiff.training.trainer import TrainingDiverged, train
from tinycorpus import make_tiny_corpus  # noqa: E402  (tests/ is on sys.path)

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "training" / "train.py"

TINY_OVERRIDES = [
    "data.crop_frames=32", "data.crop_size=32", "data.num_workers=0",
    "training.batch_size=2", "training.warmup_steps=2", "training.log_every=1", "training.validate_every=0",
    "training.learning_rate=1e-3",
    "score_model.unet.block_out_channels=[8,16]", "score_model.unet.attention_levels=[false,false]",
    "score_model.unet.norm_num_groups=4", "score_model.unet.attention_head_dim=8",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"), num_items=8, num_frames=12, size=32)


def overrides(manifest: Path, *extra: str) -> list[str]:
    return [f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}", *TINY_OVERRIDES, *extra]


def child_env() -> dict[str, str]:
    """One thread per process: two processes on two cores must not oversubscribe them."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    latest = ckpt.find_latest_checkpoint(run)
    return {**load_file(str(latest / "model.safetensors")), **load_file(str(latest / ckpt.EMA_NAME))}


def test_two_cpu_processes_share_work_and_stay_in_sync(tmp_path, corpus):
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TRAIN_SCRIPT), "--config",
               str(REPO_ROOT / "configs" / "tiny.yaml"), "--output-dir", str(run), "--max-steps", "2", "--cpu",
               "--record-data-order", *sum((["--set", o] for o in overrides(corpus)), [])]
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((run / "ranks" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["step"] == reports[1]["step"] == 2
    assert reports[0]["parameter_checksum"] == reports[1]["parameter_checksum"]  # identical weights
    # One epoch: 8 items, 4 per rank (2 steps of batch 2), disjoint and together all of them.
    seen = [set(r["seen_ids"]) for r in reports]
    assert [len(r["seen_ids"]) for r in reports] == [4, 4] and not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 8
    assert "world size 2" in (run / "train.log").read_text()


@pytest.fixture
def one_thread():
    """In-process runs use one thread like the child processes: CPU kernels then add in the same order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path, corpus, one_thread):
    extra = ["training.checkpoint_every=2", "training.keep_checkpoints=5", "training.ema_decay=0.9"]
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml", overrides(corpus, *extra))
    reference = train(config, tmp_path / "whole", max_steps=7, cpu=True)
    assert reference.status == "finished"

    interrupted = tmp_path / "interrupted"
    command = [sys.executable, str(TRAIN_SCRIPT), "--config", str(REPO_ROOT / "configs" / "tiny.yaml"),
               "--output-dir", str(interrupted), "--max-steps", "7", "--cpu",
               *sum((["--set", o] for o in overrides(corpus, *extra)), [])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env())
    deadline = time.time() + 300
    while not (interrupted / "checkpoint-2" / ckpt.STATE_NAME).exists():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 3, output  # interrupted, checkpoint saved
    state = ckpt.read_state(ckpt.find_latest_checkpoint(interrupted))
    assert 2 <= state.step < 7, output

    resumed = train(config, interrupted, max_steps=7, resume="latest", cpu=True)
    assert resumed.status == "finished" and resumed.step == 7
    assert f"resumed from {interrupted}/checkpoint-{state.step}" in (interrupted / "train.log").read_text()
    expected, actual = final_weights(tmp_path / "whole"), final_weights(interrupted)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_nonfinite_losses_are_skipped_then_stop_the_run(tmp_path, corpus, monkeypatch):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         overrides(corpus, "training.checkpoint_every=2", "training.max_nonfinite_steps=3"))
    original = DenoisingScoreMatchingLoss.__call__
    calls = {"n": 0}
    poisoned = {3}  # one bad step: skipped, training goes on

    def sometimes_nan(self, *args, **kwargs):
        calls["n"] += 1
        out = original(self, *args, **kwargs)
        if calls["n"] in poisoned:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(DenoisingScoreMatchingLoss, "__call__", sometimes_nan)
    result = train(config, tmp_path / "one-bad", max_steps=5, cpu=True)
    assert result.status == "finished" and result.step == 5
    log = (tmp_path / "one-bad" / "train.log").read_text()
    assert "step 3: non-finite loss; step skipped (1 in a row, limit 3)" in log

    calls["n"] = 0
    poisoned.clear()
    poisoned.update(range(3, 100))  # from step 3 on every loss is NaN
    run = tmp_path / "diverged"
    with pytest.raises(TrainingDiverged, match=r"3 non-finite steps in a row.*last good checkpoint is .*checkpoint-2"):
        train(config, run, max_steps=10, cpu=True)
    assert [step for step, _ in ckpt.list_checkpoints(run)] == [2]
    assert ckpt.incomplete_reason(run / "checkpoint-2") is None
    good = load_file(str(run / "checkpoint-2" / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in good.values())


def test_truncated_checkpoint_is_never_resumed(tmp_path, corpus):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         overrides(corpus, "training.checkpoint_every=2"))
    run = tmp_path / "run"
    train(config, run, max_steps=2, cpu=True)
    good = run / "checkpoint-2"
    # A crash mid-save of a later checkpoint: a folder with a truncated weights file ...
    broken = run / "checkpoint-4"
    broken.mkdir()
    for path in good.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # ... and one that never got its trainer_state.json.
    (run / "checkpoint-6").mkdir()
    (run / "checkpoint-6" / "model.safetensors").write_bytes(b"partial")
    assert "truncated" in ckpt.incomplete_reason(broken)
    assert ckpt.find_latest_checkpoint(run) == good
    resumed = train(config, run, max_steps=3, resume="latest", cpu=True)
    assert resumed.step == 3
    assert f"resumed from {good}" in (run / "train.log").read_text()
    with pytest.raises(ckpt.CheckpointError, match="incomplete checkpoint"):
        ckpt.resolve_resume(run, str(broken))


def test_tensorboard_gets_scalars_audio_and_spectrograms(tmp_path, corpus):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         overrides(corpus, "training.validate_every=2", "training.validation_samples=1",
                                   "training.validation_sampler_steps=2"))
    train(config, tmp_path / "run", max_steps=2, cpu=True)
    events = EventAccumulator(str(next((tmp_path / "run" / "logs").rglob("events.out.tfevents.*")).parent),
                              size_guidance={"audio": 0, "images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    for scalar in ("train/loss", "train/lr", "train/grad_norm", "train/samples_per_s", "val/loss_av",
                   "val/loss_audio_only"):
        assert scalar in tags["scalars"], scalar
    assert any(tag.startswith("train/loss_band") for tag in tags["scalars"])
    assert {"val/0/generated", "val/0/reference"} <= set(tags["audio"])
    assert {"val/0/generated_spectrogram", "val/0/reference_spectrogram"} <= set(tags["images"])


def test_exported_model_folder_loads_with_ema_weights(tmp_path, corpus):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml", overrides(corpus))
    result = train(config, tmp_path / "run", max_steps=2, cpu=True)
    folder = result.model_dir
    assert sorted(p.name for p in folder.iterdir()) == ["avdiff_pipeline.json", "config.yaml", "diffusion",
                                                       "lip_encoder", "score_model"]
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    components = load_model_folder(folder)
    ema = load_file(str(ckpt.find_latest_checkpoint(tmp_path / "run") / ckpt.EMA_NAME))
    score_state = components.score_model.state_dict()
    for name, value in score_state.items():
        assert torch.equal(value, ema[f"shadow.denoiser.network.{name}"]), name
    assert components.formulation.sigma_data == pytest.approx(ckpt.read_state(tmp_path / "run" / "checkpoint-2").sigma_data)
    assert components.sampler == config.sampler and components.spectrogram == config.spectrogram


def test_avdiff_train_command_trains_and_exports(tmp_path, corpus, one_thread, capsys):
    """`avdiff train` (what `accelerate launch -m avdiff train` runs) trains and exports a model folder."""
    tiny = str(REPO_ROOT / "configs" / "tiny.yaml")
    assert avdiff_main(["train", "--config", tiny, "--output", str(tmp_path / "no-data")]) == 2
    assert "data.train_manifest is not set" in capsys.readouterr().err

    run = tmp_path / "run"
    code = avdiff_main(["train", "--config", tiny, "--output", str(run), "--max-steps", "2", "--cpu",
                        *sum((["--set", o] for o in overrides(corpus)), [])])
    assert code == 0
    assert ckpt.read_state(ckpt.find_latest_checkpoint(run)).step == 2
    components = load_model_folder(run / "model")
    assert components.sampler == load_config(AVDiffConfig, tiny).sampler
