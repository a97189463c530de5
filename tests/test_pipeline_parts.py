"""Pieces of the pipeline: chunk plans and cross-fades, the NMF noise model, the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from avdiff.audio.chunks import chunk_weights, join_chunks, plan_chunks, plan_even_chunks
from avdiff.cli import main
from avdiff.posterior.nmf import NoiseModel, fit_nmf, is_divergence


@pytest.mark.parametrize("frames", [100, 256, 257, 1001, 37501])
def test_chunks_cover_everything_on_video_frame_boundaries(frames):
    chunks = plan_chunks(frames, 256, 32)
    padded = chunks[-1][1]
    assert chunks[0][0] == 0 and frames <= padded < frames + 5
    assert all(start % 5 == 0 for start, _ in chunks)
    assert all(end - start == min(256, frames) for start, end in chunks)  # equal sizes: they batch
    assert all(b[0] < a[1] for a, b in zip(chunks, chunks[1:]))  # consecutive chunks overlap
    total = torch.zeros(padded)
    for (start, end), weight in zip(chunks, chunk_weights(chunks, padded)):
        total[start:end] += weight
    torch.testing.assert_close(total, torch.ones(padded))


@pytest.mark.parametrize("frames", [751, 1024, 1025, 1251, 3751, 37501])
def test_even_chunks_are_the_fewest_of_one_length_and_less_work(frames):
    fixed, even = plan_chunks(frames, 1024, 32), plan_even_chunks(frames, 1024, 32)
    lengths = {end - start for start, end in even}
    assert len(even) == len(fixed) and len(lengths) == 1 and max(lengths) <= 1024  # as few, all alike: they batch
    assert even[0][0] == 0 and frames <= even[-1][1] < frames + 5 and all(start % 5 == 0 for start, _ in even)
    assert all(a[1] - b[0] >= 32 for a, b in zip(even, even[1:]))  # the overlap asked for, at least
    assert sum(end - start for start, end in even) <= sum(end - start for start, end in fixed)
    if frames == 1251:  # a 10 s input: two chunks of 642 frames instead of two of 1024
        assert even == [(0, 642), (610, 1252)]


def test_an_enhancement_plan_chunks_as_its_model_says():
    from avdiff.config.schema import EnhancementConfig
    from avdiff.pipeline.plans import enhancement_plan

    plans = {even: enhancement_plan(EnhancementConfig(chunk_frames=1024, even_chunks=even)) for even in (False, True)}
    assert plans[False].chunks(1251) == plan_chunks(1251, 1024, 32)
    assert plans[True].chunks(1251) == plan_even_chunks(1251, 1024, 32)
    assert plans[True].to_dict()["even_chunks"] is True and plans[False].to_dict()["even_chunks"] is False


def test_enhancement_runs_the_network_on_the_plans_chunks(random_pipeline):
    """251 STFT frames in chunks of at most 100: four of 100 frames, or four even ones of 87."""
    from dataclasses import replace

    noisy = (0.1 * np.random.default_rng(0).standard_normal(250 * 128)).astype(np.float32)
    assert random_pipeline.transform.num_frames(len(noisy)) == 251
    widths: dict[bool, list[int]] = {False: [], True: []}
    for even in (False, True):
        plan = replace(random_pipeline.enhancement_plan(steps=2, chunk_frames=100, options={"num_samples": 1}),
                       even_chunks=even)
        network = random_pipeline.denoiser.network
        hook = network.register_forward_hook(lambda module, inputs, output: widths[even].append(inputs[0].shape[-1]))
        out = random_pipeline.enhance(noisy, sample_rate=16000, plan=plan)
        hook.remove()
        assert np.isfinite(out.audio).all() and out.audio.shape[-1] == len(noisy)
    assert widths[False] == [100] * 4 * 2  # 4 chunks x 2 levels
    assert widths[True] == [87] * 4 * 2 and plan_even_chunks(251, 100, 32)[0] == (0, 87)


def test_joining_identical_chunks_gives_back_the_signal():
    signal = torch.randn(2, 3, 1001, dtype=torch.float32)
    chunks = plan_chunks(1001, 200, 40)
    padded = torch.nn.functional.pad(signal, (0, chunks[-1][1] - 1001))
    pieces = [padded[..., start:end] for start, end in chunks]
    torch.testing.assert_close(join_chunks(pieces, chunks, 1001), signal)


def test_nmf_lowers_is_divergence_and_recovers_a_low_rank_variance():
    generator = torch.Generator().manual_seed(0)
    W = torch.rand(1, 40, 2, generator=generator) + 0.05
    H = torch.rand(1, 2, 60, generator=generator) + 0.05
    variance = W @ H
    # Power of a complex Gaussian with that variance: exponential with mean V.
    power = variance * -torch.log(torch.rand(variance.shape, generator=generator))
    model = NoiseModel.initial(power, rank=2, generators=[torch.Generator().manual_seed(1)])
    divergences = [is_divergence(power, model.variance).item()]
    for _ in range(30):
        model = fit_nmf(power, model, iterations=5)
        divergences.append(is_divergence(power, model.variance).item())
    assert all(b <= a + 1e-3 for a, b in zip(divergences, divergences[1:]))  # monotone (IS-NMF)
    torch.testing.assert_close(model.W.sum(1), torch.ones(1, 2))  # normalised columns
    relative = (model.variance - variance).abs().mean() / variance.mean()
    assert relative < 0.35  # from one noisy (exponential) draw of the power


def test_enhance_command_batch_reports_bad_items_resumes_and_never_overwrites(tmp_path, random_pipeline):
    model = random_pipeline.save_pretrained(tmp_path / "model")
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    sf.write(noisy / "good.wav", (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000)
    bad = np.zeros(8000, np.float32)
    bad[5] = np.nan
    sf.write(noisy / "bad.wav", bad, 16000, subtype="FLOAT")
    out = tmp_path / "enhanced"
    args = ["enhance", "--model", str(model), "--noisy", str(noisy), "--output", str(out), "--steps", "2"]
    assert main(args) == 1  # one item failed ...
    assert (out / "good.wav").is_file() and not (out / "bad.wav").exists()  # ... the batch went on
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failures[0]["id"] == "bad" and "NaN" in failures[0]["reason"]
    assert (out / "enhance_settings.yaml").is_file()
    stamp = (out / "good.wav").stat().st_mtime_ns
    main(args)  # resumed: the finished output is skipped, not rewritten
    assert (out / "good.wav").stat().st_mtime_ns == stamp
    single = tmp_path / "single.wav"
    single.write_bytes(b"keep me")
    assert main(["enhance", "--model", str(model), "--noisy", str(noisy / "bad.wav"), "--output", str(single),
                 "--overwrite", "--steps", "2"]) == 1
    assert single.read_bytes() == b"keep me"  # a failed item overwrites nothing


def test_generate_command_on_a_manifest(tmp_path, random_pipeline):
    from tinycorpus import make_tiny_corpus

    model = random_pipeline.save_pretrained(tmp_path / "model")
    manifest = make_tiny_corpus(tmp_path / "data", num_items=2, num_frames=10, size=32)
    out = tmp_path / "generated"
    assert main(["generate", "--model", str(model), "--video", str(manifest), "--output", str(out),
                 "--num-samples", "2", "--steps", "2"]) == 0
    for item in ("item000", "item001"):
        for k in range(2):
            audio, rate = sf.read(out / f"{item}_s{k}.wav")
            assert rate == 16000 and len(audio) == 10 * 640
    assert "model:" in (out / "generate_settings.yaml").read_text()
    written = (out / "generate_settings.yaml").read_text()
    (out / "generate_settings.yaml").unlink()  # as a run killed after its last output, before its end
    argv = ["generate", "--model", str(model), "--video", str(manifest), "--output", str(out), "--num-samples", "2",
            "--steps", "2"]
    assert main(argv) == 0  # every output there: skipped, and the settings written again
    assert (out / "generate_settings.yaml").read_text() == written


def test_inputs_sharing_a_name_get_distinct_outputs(tmp_path, random_pipeline):
    """dup.wav and dup.flac used to map to one output: the second was skipped as 'already there'."""
    from avdiff.pipeline.batch import item_names

    folder = tmp_path / "noisy"
    (folder / "sub").mkdir(parents=True)
    files = [folder / "dup.flac", folder / "dup.wav", folder / "sub" / "dup.wav", folder / "solo.WAV"]
    assert item_names(files, folder) == ["dup_flac", "dup_wav", "sub/dup", "solo"]
    model = random_pipeline.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(3)
    for path in files[:2]:
        sf.write(path, (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)
    out = tmp_path / "enhanced"
    assert main(["enhance", "--model", str(model), "--noisy", str(folder), "--output", str(out), "--steps", "2"]) == 0
    first, second = sf.read(out / "dup_flac.wav")[0], sf.read(out / "dup_wav.wav")[0]
    assert len(first) == len(second) == 4000 and not np.allclose(first, second)
