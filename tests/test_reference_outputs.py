"""Same model, same inputs, same seeds -> the same audio as saved in tests/data/reference/.

A guard for refactors (issue 11): a tiny model folder and the outputs it gave for fixed
inputs are committed; every sampler and enhancement method must reproduce them. A change that
is meant to alter the numbers regenerates them on purpose:

    AVDIFF_REGENERATE_REFERENCE=1 .venv/bin/python -m pytest tests/test_reference_outputs.py

and says why in its commit message.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tinymodels import tiny_components

from avdiff.pipeline import AVDiffusionPipeline

REFERENCE = Path(__file__).parent / "data" / "reference"
REGENERATE = os.environ.get("AVDIFF_REGENERATE_REFERENCE") == "1"


def build_model(folder: Path) -> Path:
    from avdiff.pipeline import save_model_folder

    return save_model_folder(tiny_components(attention_levels=(False, False, True), sampler="predictor_corrector",
                                             block_out_channels=(8, 16, 16)),
                             folder)


def outputs(pipeline: AVDiffusionPipeline) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    video = rng.integers(0, 255, (13, 40, 40), dtype=np.uint8)
    noisy = (0.1 * rng.standard_normal(13 * 640)).astype(np.float32)
    # The settings the first outputs were saved with (NMF refits as before nmf_pass_updates existed).
    refits = {"steps": 3, "nmf_pass_updates": None, "nmf_refit_below": 3.0}
    few = {"udiffse+": refits, "udiffse": {"steps": 3, "em_iterations": 2}, "dps": refits, "diffpir": refits}
    results = {
        f"generate_{name}": pipeline.generate(video, sampler=name, steps=3, seed=3, guidance_scale=guidance).audio
        for name, guidance in (("predictor_corrector", 2.0), ("heun", 1.0), ("euler_maruyama", 1.0),
                               ("edm_stochastic", 1.0), ("dpmpp_2m", 2.0))
    }
    results["generate_dpmpp_2m_sde"] = pipeline.generate(video, sampler="dpmpp_2m", steps=3, seed=3,
                                                         sampler_options={"eta": 1.0}).audio
    for method, options in few.items():
        for label, lips in (("audio", None), ("av", video)):
            results[f"enhance_{method}_{label}"] = pipeline.enhance(
                noisy, sample_rate=16000, video=lips, method=method, options=options, seed=5).audio
    results["enhance_udiffse+_pass_updates"] = pipeline.enhance(
        noisy, sample_rate=16000, method="udiffse+", options={"steps": 4, "nmf_pass_updates": 5, "nmf_refit_below": 5.0},
        seed=5).audio
    results["enhance_udiffse-paper"] = pipeline.enhance(noisy, sample_rate=16000, method="udiffse-paper",
                                                        steps=3, seed=5).audio
    return results


def test_every_sampler_and_method_reproduces_the_saved_outputs(tmp_path):
    if REGENERATE:
        folder = build_model(REFERENCE / "model")
        pipeline = AVDiffusionPipeline.from_pretrained(folder, dtype=torch.float32, backend="torch")
        np.savez_compressed(REFERENCE / "outputs.npz", **outputs(pipeline))
    if not (REFERENCE / "outputs.npz").is_file():
        pytest.fail(f"{REFERENCE}/outputs.npz is missing: regenerate it (see this module's docstring)")
    saved = np.load(REFERENCE / "outputs.npz")
    now = outputs(AVDiffusionPipeline.from_pretrained(REFERENCE / "model", dtype=torch.float32, backend="torch"))
    assert sorted(now) == sorted(saved.files)
    for name, audio in now.items():
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0, name
        np.testing.assert_allclose(audio, saved[name], rtol=0, atol=1e-5, err_msg=name)
