"""The score network's engines (avdiff.inference): the ONNX Runtime body agrees with torch's, the
choice of engine and its fallback, the export cache, and the pipeline on either engine."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from avdiff.inference import AUTO, ONNXRUNTIME, TORCH, choose_backend, onnxruntime_available
from avdiff.inference import onnx_export, runtime

needs_onnxruntime = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime/onnx not installed")

# The stated tolerance of the exported path: relative to the output's peak, per network call.
CALL_TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test exports into its own cache folder."""
    monkeypatch.setenv("AVDIFF_CACHE", str(tmp_path / "cache"))


def network_inputs(unet, batch: int, bins: int, frames: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 2, bins, frames, generator=generator)
    noise_level = torch.randn(batch, generator=generator)
    cond = torch.randn(batch, unet.config.cond_channels, frames, generator=generator)
    mask = torch.rand(batch, frames, generator=generator) > 0.3
    return sample, noise_level, cond, mask


@needs_onnxruntime
@pytest.mark.parametrize("batch, bins, frames", [(1, 128, 37), (2, 256, 100), (1, 64, 8)])
def test_exported_body_matches_torch_at_sizes_it_was_not_traced_at(tiny_unet, batch, bins, frames):
    exported = runtime.OnnxScoreNetwork(tiny_unet, threads=1)
    inputs = network_inputs(tiny_unet, batch, bins, frames)
    with torch.no_grad():
        reference = tiny_unet(*inputs[:2], cond=inputs[2], cond_mask=inputs[3])
        out = exported(*inputs[:2], cond=inputs[2], cond_mask=inputs[3])
    assert out.shape == reference.shape and out.dtype == torch.float32
    assert (out - reference).abs().max() <= CALL_TOLERANCE * reference.abs().max()
    with torch.no_grad():  # and without a condition (the speech prior's call)
        reference = tiny_unet(inputs[0], inputs[1])
        out = exported(inputs[0], inputs[1])
    assert (out - reference).abs().max() <= CALL_TOLERANCE * reference.abs().max()


@needs_onnxruntime
def test_a_gradient_through_the_exported_network_comes_from_torch(tiny_unet):
    exported = runtime.OnnxScoreNetwork(tiny_unet, threads=1)
    sample, noise_level, _, _ = network_inputs(tiny_unet, 1, 64, 16)
    sample.requires_grad_(True)
    exported(sample, noise_level).square().sum().backward()
    expected = sample.grad.clone()
    sample.grad = None
    tiny_unet(sample, noise_level).square().sum().backward()
    assert torch.equal(sample.grad, expected)


@needs_onnxruntime
def test_export_is_cached_by_the_weights(tiny_unet, monkeypatch):
    exports = []
    real_export = onnx_export.export_body
    monkeypatch.setattr(onnx_export, "export_body", lambda net, path: exports.append(path) or real_export(net, path))
    first = onnx_export.exported_body(tiny_unet)
    assert onnx_export.exported_body(tiny_unet) == first and len(exports) == 1  # read back, not exported again
    with torch.no_grad():
        tiny_unet.conv_out.bias.add_(1.0)
    changed = onnx_export.exported_body(tiny_unet)
    assert changed != first and len(exports) == 2 and first.parent == changed.parent
    assert not list(first.parent.glob(".*.tmp*"))  # written atomically, nothing half-written left
    changed.write_bytes(b"not a graph")  # a damaged cache file is exported again, not an error
    exported = runtime.OnnxScoreNetwork(tiny_unet, threads=1)
    assert len(exports) == 3 and changed.stat().st_size > 1000 and exported.session is not None


def test_auto_picks_onnxruntime_only_for_float32_on_the_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: True)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_backend(AUTO, cpu, torch.float32).name == ONNXRUNTIME
    assert choose_backend(AUTO, cpu, torch.bfloat16) == runtime.BackendChoice(TORCH)  # quietly: bf16 is torch's
    assert choose_backend(AUTO, cuda, torch.float32) == runtime.BackendChoice(TORCH)
    assert choose_backend(TORCH, cpu, torch.float32) == runtime.BackendChoice(TORCH)
    asked = choose_backend(ONNXRUNTIME, cpu, torch.bfloat16)
    assert asked.name == TORCH and "float32 on the CPU only" in asked.note
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        choose_backend("tensorrt", cpu, torch.float32)


def test_a_missing_runtime_falls_back_to_torch_with_one_line(monkeypatch, caplog):
    from avdiff.pipeline.pipeline import AVDiffusionPipeline
    from tinymodels import tiny_components

    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    for requested in (AUTO, ONNXRUNTIME):
        choice = choose_backend(requested, torch.device("cpu"), torch.float32)
        assert choice.name == TORCH and "onnxruntime is not installed" in choice.note and "avdiff[cpu]" in choice.note
    with caplog.at_level(logging.WARNING, logger="avdiff.pipeline"):
        pipeline = AVDiffusionPipeline(tiny_components(), dtype=torch.float32, backend=ONNXRUNTIME)
    assert pipeline.backend.name == TORCH and pipeline.denoiser.network is pipeline.components.score_model
    assert [r.getMessage() for r in caplog.records].count(choice.note) == 1


@needs_onnxruntime
def test_the_pipeline_generates_and_enhances_alike_on_both_engines():
    from avdiff.pipeline.pipeline import AVDiffusionPipeline
    from tinymodels import tiny_components

    components = tiny_components()
    engines = {name: AVDiffusionPipeline(components, dtype=torch.float32, backend=name) for name in (TORCH, ONNXRUNTIME)}
    assert isinstance(engines[ONNXRUNTIME].denoiser.network, runtime.OnnxScoreNetwork)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (20, 32, 32), dtype=np.uint8)
    noisy = (0.1 * rng.standard_normal(20 * 640)).astype(np.float32)
    made = {name: p.generate(video, steps=3, seed=1).audio for name, p in engines.items()}
    cleaned = {name: p.enhance(noisy, sample_rate=16000, steps=3, seed=1).audio for name, p in engines.items()}
    for outputs in (made, cleaned):
        difference = np.abs(outputs[TORCH] - outputs[ONNXRUNTIME]).max()
        assert 0 < difference <= 1e-3 * np.abs(outputs[TORCH]).max()  # another engine, the same result


def test_the_command_line_names_its_engine_and_says_when_it_falls_back(tmp_path, random_pipeline, monkeypatch,
                                                                        caplog):
    import yaml

    from avdiff.cli import main

    model = random_pipeline.save_pretrained(tmp_path / "model")
    video = tmp_path / "lips.npy"
    np.save(video, np.random.default_rng(0).integers(0, 255, (10, 32, 32), dtype=np.uint8))
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    out = tmp_path / "speech.wav"
    with caplog.at_level(logging.WARNING):  # a warning of avdiff's logger: one line on stderr in a terminal
        assert main(["generate", "--model", str(model), "--video", str(video), "--output", str(out), "--steps", "2",
                     "--dtype", "float32", "--backend", "onnxruntime"]) == 0
    lines = [record.getMessage() for record in caplog.records]
    assert sum("onnxruntime is not installed: the score network runs in torch" in line for line in lines) == 1
    runtime_settings = yaml.safe_load(out.with_suffix(".settings.yaml").read_text())["runtime"]
    assert runtime_settings == {"device": "cpu", "dtype": "float32", "engine": "torch"}


def test_help_and_a_command_load_only_what_they_need():
    """`avdiff --help` imports no command module and no torch; a command imports its own module only."""
    import subprocess
    import sys

    probe = ("import sys\nfrom avdiff.cli import main\ntry:\n    main({argv})\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('avdiff.commands.')))")
    loaded = {}
    for argv in (["--help"], ["split", "--help"]):
        result = subprocess.run([sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True,
                                check=True)
        loaded[argv[0]] = result.stdout.strip().splitlines()[-1]
    assert loaded["--help"] == "[]"
    assert "avdiff.commands.split" in loaded["split"] and "avdiff.commands.generate" not in loaded["split"]


def test_a_network_without_an_exportable_body_runs_in_torch_saying_so(tiny_unet):
    class PlainNetwork(torch.nn.Module):  # a plug-in backbone: forward only
        def forward(self, sample, noise_level, cond=None, cond_mask=None):
            return sample

    plain = PlainNetwork()
    network, choice = runtime.score_network_for(plain, runtime.BackendChoice(ONNXRUNTIME))
    assert network is plain and choice.name == TORCH and "PlainNetwork has no exportable body" in choice.note
    assert runtime.exportable(tiny_unet)
