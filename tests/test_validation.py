"""Arguments and config values are checked up front: a bad value is a clear error naming it,
never a silent default, a traceback late in a run, or a wrong result (issue 15's list)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdiff.cli import build_parser
from avdiff.config import AVDiffConfig, load_config
from avdiff.errors import ConfigError, InputError


@pytest.mark.parametrize("override,message", [
    ("training.learning_rate=-1", "learning_rate"),
    ("training.ema_decay=2.0", "ema_decay must be in"),
    ("training.max_steps=-5", "max_steps must be >= 1"),
    ("data.num_workers=-2", "num_workers must be >= 0"),
    ("sampler.guidance_scale=.nan", "guidance_scale must be a finite number"),
    ("sampler.steps=0", "steps must be >= 1"),
    ("enhancement.batch_size=0", "batch_size must be >= 1"),
    ("enhancement.options={likelihood_weight: .inf}", "likelihood_weight must be a finite number"),
    ("enhancement.options={em_iterations: 2}", "unknown key 'em_iterations'"),  # udiffse's, not udiffse+'s
    ("enhancement.method=udiffse++", "method: unknown posterior method 'udiffse\\+\\+'"),
    ("enhancement.posterior.nmf_rank=0", "nmf_rank must be >= 1"),  # a config from before methods had their
    # own settings: its flat section becomes the options of its method
])
def test_bad_config_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(AVDiffConfig, "tiny", [override])


@pytest.mark.parametrize("argv,message", [
    (["generate", "--video", "x.npy", "--steps", "0"], "--steps: must be a whole number >= 1, got 0"),
    (["generate", "--video", "x.npy", "--guidance", "nan"], "--guidance: must be a finite number"),
    (["generate", "--video", "x.npy", "--num-samples", "0"], "--num-samples: must be a whole number"),
    (["enhance", "--noisy", "x.wav", "--batch-size", "0"], "--batch-size: must be a whole number >= 1"),
    (["enhance", "--noisy", "x.wav", "--em-iterations", "-1"], "--em-iterations: posterior setting em_iterations "
     "must be >= 1, got -1"),
    (["enhance", "--noisy", "x.wav", "--likelihood-weight", "inf"], "--likelihood-weight: key 'likelihood_weight' "
     "expects float, got str 'inf'"),
    (["enhance", "--noisy", "x.wav", "--nmf-init", "paper"], "--nmf-init: key 'nmf_init' expects 'scaled' | 'uniform'"),
    (["train", "--config", "tiny", "--max-steps", "-5"], "--max-steps: must be a whole number >= 1, got -5"),
])
def test_bad_arguments_stop_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_pipeline_refuses_zero_steps_and_nan_guidance(random_pipeline):
    """Zero levels used to mean 'the default' (30 levels ran for --steps 0); NaN guidance wrote
    full-scale -32768 samples."""
    video = np.random.default_rng(0).integers(0, 255, (5, 40, 40), dtype=np.uint8)
    noisy = (0.1 * np.random.default_rng(1).standard_normal(3200)).astype(np.float32)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        random_pipeline.generate(video, steps=0)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        random_pipeline.generate(video, guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        random_pipeline.enhance(noisy, sample_rate=16000, steps=0)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
        random_pipeline.enhance(noisy, sample_rate=16000, guidance_scale=float("inf"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    from avdiff.commands.common import open_pipeline

    args = build_parser().parse_args(["generate", "--video", "x.npy", "--device", "cuda"])
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        open_pipeline(args)


@pytest.mark.parametrize("change,message", [
    ({"colour": 1}, "unknown key"),
    ({"_class_name": "StableDiffusionPipeline"}, "not AVDiffusionPipeline"),
    ({"video": {"fps": 30, "crop_size": 40}}, "video.fps is 30"),
    ({"spectrogram": {"sample_rate": 8000}}, "spectrogram.sample_rate is 8000, but avdiff's time grid has 16000"),
    ({"spectrogram": {"hop_length": 160}}, "spectrogram.hop_length is 160"),
])
def test_a_model_index_this_avdiff_would_misread_is_refused(random_pipeline, tmp_path, change, message):
    import json

    from avdiff.pipeline import AVDiffusionPipeline

    folder = random_pipeline.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "avdiff_pipeline.json").read_text())
    (folder / "avdiff_pipeline.json").write_text(json.dumps({**index, **change}))
    with pytest.raises(InputError, match=message):
        AVDiffusionPipeline.from_pretrained(folder)


def test_an_index_whose_stft_differs_from_the_training_config_is_refused(random_pipeline, tmp_path):
    """Another n_fft in the index than the network was trained with gives wrong audio silently;
    the training config export writes beside the components records the trained value."""
    import json

    import yaml

    from avdiff.pipeline import AVDiffusionPipeline

    folder = random_pipeline.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "avdiff_pipeline.json").read_text())
    trained = {"spectrogram": dict(index["spectrogram"])}
    (folder / "config.yaml").write_text(yaml.safe_dump(trained))
    AVDiffusionPipeline.from_pretrained(folder)  # agreeing: loads
    index["spectrogram"]["n_fft"] = index["spectrogram"]["n_fft"] + 256
    (folder / "avdiff_pipeline.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match=r"n_fft \d+ in avdiff_pipeline.json but \d+ in training"):
        AVDiffusionPipeline.from_pretrained(folder)
