"""Target-speaker extraction (issue 25): the joint two-source pass picks the talker the lips name,
and a toss-up without them; `avdiff extract` handles bad items as the other batch commands do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import Tensor

from avdiff.cli import main
from avdiff.diffusion import EDMFormulation
from avdiff.diffusion.noise import make_generators
from avdiff.posterior import LipEvidence
from avdiff.posterior.extraction import ExtractionProblem, ExtractionSettings, JointExtraction

SIGMA_DATA = 0.5


def two_talkers() -> tuple[Tensor, Tensor]:
    """Two 'talkers': fixed spectrogram patterns with disjoint bins (8 x 16 real view)."""
    a, b = torch.zeros(1, 2, 8, 16), torch.zeros(1, 2, 8, 16)
    a[:, 0, 1:3], b[:, 0, 5:7] = 1.0, -1.0
    return a, b


def point_prior(patterns: list[Tensor]):
    """The exact denoiser of a prior that puts equal mass on each pattern: D = sum softmax(-|x - p|^2
    / 2 sigma^2) p. One pattern: the lips saying which talker it is; both: the lips masked."""
    stacked = torch.cat(patterns)

    def denoise(x: Tensor, sigma: Tensor) -> Tensor:
        s = sigma.reshape(-1, 1).to(x)
        distance = ((x.unsqueeze(1) - stacked.unsqueeze(0)) ** 2).flatten(2).sum(-1)  # (B, K)
        weights = torch.softmax(-distance / (2 * s**2), dim=1)
        return torch.einsum("bk,kcft->bcft", weights, stacked)

    return lambda repeats: denoise


def extract_toy(target_prior, seed: int, lips: LipEvidence | None = None, **options) -> tuple[Tensor, Tensor]:
    a, b = two_talkers()
    y = a + b + 0.01 * torch.randn(a.shape, generator=torch.Generator().manual_seed(seed))
    problem = ExtractionProblem(y, target_prior, point_prior([a, b]), EDMFormulation(sigma_data=SIGMA_DATA),
                                make_generators([seed], "cpu"), lips=lips)
    out = JointExtraction(ExtractionSettings(steps=12, num_samples=1, **options)).run(problem)
    assert out.network_calls == 24 and out.target.shape == y.shape
    return out.target, out.interferer


def closest(estimate: Tensor, a: Tensor, b: Tensor) -> str:
    return "a" if (estimate - a).norm() < (estimate - b).norm() else "b"


def test_the_lips_decide_which_source_is_the_target() -> None:
    a, b = two_talkers()
    for seed in range(6):
        target, interferer = extract_toy(point_prior([a]), seed)  # the lips say: talker a
        assert (target - a).norm() < 0.2 * a.norm() and (interferer - b).norm() < 0.2 * b.norm(), seed


def test_without_lips_the_target_is_a_toss_up() -> None:
    a, b = two_talkers()
    picks = []
    for seed in range(12):
        target, interferer = extract_toy(point_prior([a, b]), seed)
        picks.append(closest(target, a, b))
        assert closest(interferer, a, b) != picks[-1]  # the two sources still split the mixture
    assert 3 <= picks.count("a") <= 9, picks


def test_the_lips_envelope_caps_the_target_where_the_mouth_is_shut() -> None:
    """An uninformed target prior, but lips whose envelope has energy only in talker a's bins: with
    `lips_cap` the target never takes talker b's bins; without it, it does for some seeds."""
    a, b = two_talkers()
    lips = LipEvidence(speech_power=a.square().sum(1), reliability=torch.ones(1, a.shape[-1]))

    def share_of_b(target: Tensor) -> float:
        return float((target * (b != 0)).norm() / b.norm())

    capped = [share_of_b(extract_toy(point_prior([a, b]), seed, lips, lips_cap=True)[0]) for seed in range(8)]
    uncapped = [share_of_b(extract_toy(point_prior([a, b]), seed, lips, lips_cap=False)[0]) for seed in range(8)]
    assert max(capped) < 0.05 and max(uncapped) > 0.5, (capped, uncapped)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    return save_model_folder(tiny_components(), tmp_path_factory.mktemp("model") / "model")


def test_extract_batch_reports_bad_items_and_carries_on(model: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    mixtures, videos, out = tmp_path / "mixtures", tmp_path / "videos", tmp_path / "extracted"
    mixtures.mkdir()
    videos.mkdir()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (25, 40, 40), dtype=np.uint8)  # 1 s of video
    for name, seconds in (("good", 1.0), ("long audio", 3.0), ("no video", 1.0)):
        sf.write(mixtures / f"{name}.wav", 0.1 * rng.standard_normal(int(16000 * seconds)), 16000)
    (mixtures / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    for name in ("good", "long audio", "corrupt"):
        np.save(videos / f"{name}.npy", crops)
    args = ["extract", "--model", str(model), "--mixture", str(mixtures), "--video", str(videos), "--output", str(out),
            "--steps", "2", "--num-samples", "1", "--write-interferer"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    failed = {json.loads(line)["id"]: json.loads(line)["reason"] for line in (out / "failures.jsonl").read_text().splitlines()}
    assert set(failed) == {"long audio", "no video", "corrupt"}
    assert "the video lasts 1.00 s but the audio 3.00 s" in failed["long audio"]
    assert "no video for 'no video'" in failed["no video"]
    assert str(mixtures / "corrupt.wav") in failed["corrupt"]
    for written in (out / "good.wav", out / "interferer" / "good.wav"):
        audio, rate = sf.read(written)
        assert rate == 16000 and audio.shape == (16000,) and np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert not (out / "long audio.wav").exists()
    assert "24 network calls" not in captured.out and "4 network calls" in captured.out  # 2 levels x 2 sources
    code = main(args)  # a re-run redoes only what failed
    assert code == 1 and "0 written, 1 already there (skipped), 3 failed" in capsys.readouterr().out


def test_extract_needs_a_face_and_an_audio_visual_model(random_pipeline, tmp_path: Path) -> None:
    from avdiff.errors import InputError
    from avdiff.pipeline.extraction import extract, extraction_plan
    from avdiff.pipeline.inputs import MouthVideo

    mixture = 0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    faceless = MouthVideo(np.zeros((25, 32, 32), np.uint8), np.zeros(25, bool))
    plan = extraction_plan(random_pipeline, steps=2, options={"num_samples": 1})
    with pytest.raises(InputError, match="no frame of the target's video has a usable face"):
        extract(random_pipeline, mixture, faceless, sample_rate=16000, plan=plan)
    out = extract(random_pipeline, mixture, faceless, sample_rate=16000, plan=plan, require_face=False)
    assert out.target.shape == out.interferer.shape == (16000,) and out.network_calls == 4
    with pytest.raises(Exception, match="residual_split"):
        extraction_plan(random_pipeline, options={"residual_split": "halves"})


def test_extract_without_model_uses_a_shipped_model_that_reads_lips() -> None:
    """Extraction needs the target's lips: its default model must be audio-visual (it was the
    audio-only speech prior, so `avdiff extract` without --model always failed)."""
    from avdiff.cli import build_parser
    from avdiff.pipeline.model_folder import audio_visual_flag, read_index_json
    from avdiff.pipeline.shipped import resolve_model

    args = build_parser("extract").parse_args(["extract", "--mixture", "m.wav", "--video", "v.mp4"])
    folder = resolve_model(args.model)
    assert audio_visual_flag(read_index_json(folder), str(folder))
