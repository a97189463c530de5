"""udiffse+lips: the lips' speech presence in the noise fit and their own likelihood weight.

The parts are checked where their effect is exact: the weighted NMF on powers built to show what
a fit absorbs, the envelope's inverse on a spectrum it can describe, and the method itself with
the exact Gaussian denoiser of tests/test_posterior.py (whose posterior mean is known).
"""

from __future__ import annotations

import pytest
import torch

from avdiff.audio.envelope import envelope_bin_power, log_mel_envelope
from avdiff.audio.spectrogram import SpectrogramTransform
from avdiff.config import SpectrogramConfig
from avdiff.diffusion import make_generators
from avdiff.pipeline.lip_evidence import lip_evidence
from avdiff.posterior import LipEvidence, PosteriorProblem, method_entry
from avdiff.posterior.nmf import NoiseModel, fit_nmf
from test_posterior import FORMULATION, SHAPE, exact_denoiser, gaussian_pair, regression  # tests/ is on sys.path

BINS, FRAMES = 32, 40


def noise_and_target() -> tuple[torch.Tensor, torch.Tensor]:
    """(1, F, T) powers: stationary noise of power 1 everywhere, and a target of power 50 in bins
    8..15 of frames 10..29 (what a noise model must not absorb)."""
    generator = torch.Generator().manual_seed(0)
    noise = -torch.log(torch.rand(1, BINS, FRAMES, generator=generator))  # exponential: |complex Gaussian|^2
    target = torch.zeros(1, BINS, FRAMES)
    target[:, 8:16, 10:30] = 50.0
    return noise, target


def initial_model(power: torch.Tensor) -> NoiseModel:
    return NoiseModel.initial(power, 4, make_generators([1]))


def test_weighted_nmf_leaves_zero_weight_bins_out_of_the_fit():
    noise, target = noise_and_target()
    speech_bins = target > 0
    weights = (~speech_bins).float()
    mixture = noise + target
    weighted = fit_nmf(mixture, initial_model(mixture), 50, weights)
    # What lies under weight 0 does not matter: the same fit with the target's bins replaced.
    elsewhere = torch.where(speech_bins, torch.full_like(noise, 1e3), noise)
    replaced = fit_nmf(elsewhere, initial_model(mixture), 50, weights)
    assert torch.allclose(weighted.variance, replaced.variance, rtol=1e-4)
    # The plain fit absorbs the target; the weighted one keeps the noise's level under it.
    plain = fit_nmf(mixture, initial_model(mixture), 50)
    assert float(plain.variance[speech_bins].mean()) > 10
    assert 0.5 < float(weighted.variance[speech_bins].mean()) < 2.0


def test_weighted_nmf_with_unit_weights_is_the_plain_fit():
    noise, target = noise_and_target()
    mixture = noise + target
    plain = fit_nmf(mixture, initial_model(mixture), 20)
    ones = fit_nmf(mixture, initial_model(mixture), 20, torch.ones_like(mixture))
    assert torch.allclose(plain.variance, ones.variance, rtol=1e-4)


def test_envelope_bin_power_inverts_the_log_mel_envelope():
    """A spectrum the bands can describe (smooth across bins) comes back within a few per cent."""
    bins = 256
    frequency = torch.linspace(0, 8000, bins)
    shape = torch.exp(-frequency / 2000)[:, None] * torch.tensor([1.0, 0.1, 3.0])[None, :]  # (F, T): 3 frames
    back = envelope_bin_power(log_mel_envelope(shape.unsqueeze(0), 32, 16000), bins, 16000)[0]
    inside = slice(8, 240)  # the band edges extrapolate
    assert torch.allclose(back[inside], shape[inside], rtol=0.1)
    assert torch.allclose(back[inside, 2] / back[inside, 1], torch.full((232,), 30.0), rtol=0.02)  # levels kept


def lips_problem(y: torch.Tensor, reliability: float | torch.Tensor, seeds) -> PosteriorProblem:
    """The exact-denoiser problem with lips saying the target speaks everywhere, reliable `reliability`."""
    batch, _, bins, frames = y.shape
    r = torch.as_tensor(reliability, dtype=torch.float32).expand(batch, frames)
    lips = LipEvidence(torch.ones(batch, bins, frames), r.clone())
    return PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators(seeds), lips=lips)


def blind_problem(y: torch.Tensor, seeds) -> PosteriorProblem:
    """The exact-denoiser problem without lips (audio-only)."""
    return PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators(seeds))


def run(name: str, problem: PosteriorProblem, **options) -> torch.Tensor:
    entry = method_entry(name)
    return entry.method_class(entry.settings(options)).run(problem).sample


def test_without_lips_it_is_udiffse_plus_sample_for_sample():
    _, y = gaussian_pair(2)
    y, seeds = y[:32], range(32)
    plus = run("udiffse+", blind_problem(y, seeds))
    assert torch.equal(plus, run("udiffse+lips", blind_problem(y, seeds)))
    unreliable = run("udiffse+lips", lips_problem(y, 0.0, seeds))  # lips everywhere, trusted nowhere
    assert torch.allclose(plus, unreliable, atol=1e-5)


def test_the_lips_weight_applies_on_reliable_frames_only():
    """Half the frames reliable, lambda 0.25 there: the estimate leans less on y there (regression
    on y below the other half's), and the unreliable half is about udiffse+'s (the noise model,
    fitted over all frames, is all they share)."""
    _, y = gaussian_pair(3)
    y, seeds = y[:64], range(64)
    half = SHAPE[3] // 2
    reliability = torch.cat([torch.ones(half), torch.zeros(SHAPE[3] - half)])
    out = run("udiffse+lips", lips_problem(y, reliability, seeds), lips_likelihood_weight=0.25,
              presence_weighting=False, weight_follows_presence=False)
    plus = run("udiffse+", blind_problem(y, seeds))
    trusted, other = regression(out[..., :half], y[..., :half]), regression(out[..., half:], y[..., half:])
    assert trusted < other - 0.1
    assert regression(plus[..., half:], y[..., half:]) == pytest.approx(other, abs=0.02)


def test_lip_evidence_from_the_condition():
    transform = SpectrogramTransform(SpectrogramConfig(n_fft=254))
    cond = torch.zeros(2, 8, FRAMES)
    cond[:, :4] = 0.5  # four envelope bands, then other channels
    mask = torch.ones(2, FRAMES, dtype=torch.bool)
    mask[1, :10] = False
    evidence = lip_evidence(cond, mask, 4, transform, 128)
    assert evidence.speech_power.shape == (2, 128, FRAMES) and (evidence.speech_power > 0).all()
    assert evidence.reliability.tolist() == mask.float().tolist()
    assert lip_evidence(cond, mask, 0, transform, 128) is None  # no envelope in the condition
    assert lip_evidence(cond, torch.zeros_like(mask), 4, transform, 128) is None  # no face anywhere
    assert lip_evidence(None, None, 4, transform, 128) is None  # audio-only


def test_presence_weights_leave_out_where_the_lips_say_the_target_speaks():
    """The fit's weights 1 - r P: about 0 under the lips' target (scaled to the denoised estimate's
    level, 50 times the noise), about 1 elsewhere, and 1 on frames without a reliable face."""
    from avdiff.posterior.schedule import posterior_schedule
    from avdiff.posterior.udiffse_lips import LipWeightedSettings, _LipWeightedPass

    noise, target = noise_and_target()
    shape_only = (target > 0).float() * 1e-3 + 1e-6  # the lips' envelope: the right place, not the level
    reliability = torch.ones(1, FRAMES)
    reliability[:, 25:] = 0
    settings = LipWeightedSettings(num_samples=1)
    y = torch.zeros(1, 2, BINS, FRAMES)
    one_pass = _LipWeightedPass(exact_denoiser, y, posterior_schedule(FORMULATION, settings), settings,
                                make_generators([0]), 0.1, NoiseModel(torch.ones(1, BINS, 1), torch.ones(1, 1, FRAMES)),
                                lips=LipEvidence(shape_only, reliability))
    denoised = torch.stack([target.sqrt(), torch.zeros_like(target)], dim=1)  # |D|^2 = the target's power
    weights = one_pass.fit_weights(denoised)[0]
    assert float(weights[8:16, 10:25].max()) < 0.1
    assert float(weights[:8].min()) > 0.9 and float(weights[16:].min()) > 0.9  # the envelope is 30 dB down there
    assert torch.equal(weights[:, 25:], torch.ones(BINS, FRAMES - 25))


def test_the_pipeline_hands_the_lips_to_the_method_and_the_shipped_v2s_uses_it(tmp_path, monkeypatch):
    """The lips' evidence reaches the method when the lip encoder predicts an envelope, with the
    frames' faces as reliability; the shipped audio-visual model enhances with udiffse+lips."""
    import dataclasses

    import numpy as np

    from avdiff.models import LipEncoder
    from avdiff.pipeline import AVDiffusionPipeline, save_model_folder
    from avdiff.pipeline.inputs import MouthVideo
    from avdiff.posterior.udiffse_lips import UDiffSELips
    from tinymodels import tiny_components

    seen = []
    original = UDiffSELips.build_pass

    def recording(self, problem, *args):  # noqa: ANN001, ANN002, ANN202
        seen.append(problem.lips)
        return original(self, problem, *args)

    monkeypatch.setattr(UDiffSELips, "build_pass", recording)
    torch.manual_seed(0)
    components = dataclasses.replace(tiny_components(),
                                     lip_encoder=LipEncoder.from_preset("tiny", output_dim=8, envelope_bands=4))
    pipeline = AVDiffusionPipeline.from_pretrained(save_model_folder(components, tmp_path / "model"))
    noisy = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    face_ok = np.arange(13) < 7
    video = MouthVideo(np.random.default_rng(1).integers(0, 255, (13, 40, 40), dtype=np.uint8), face_ok)
    # the faces alone as reliability: the random lips do not agree with the noise, so with the
    # agreement (the default) no frame would be trusted
    pipeline.enhance(noisy, sample_rate=16000, video=video, method="udiffse+lips", steps=2, lip_agreement=False)
    pipeline.enhance(noisy, sample_rate=16000, method="udiffse+lips", steps=2)
    evidence, audio_only = seen
    assert audio_only is None
    frames = pipeline.transform.num_frames(len(noisy))
    reliability = evidence.reliability[0, :frames]
    assert reliability[: 5 * 7 - 1].eq(1).all() and reliability[5 * 7 + 1 :].eq(0).all()  # 5 STFT frames a video frame
    shipped = AVDiffusionPipeline.from_pretrained("v2s", device="cpu").enhancement_plan()
    assert shipped.method == "udiffse+lips" and shipped.settings.refit_on_lip_frames
    assert shipped.settings.noise_model == "tracked"  # audio-only input: issue 26's recipe
    assert shipped.settings.noisy_lips_likelihood_weight == 0.25


def test_a_weight_that_follows_presence_lies_between_the_lips_weight_and_the_full_one():
    """weight_follows_presence (the default): from the first refit on, lambda = 0.75 + (1.5 - 0.75) P per bin, so
    the pull towards y lies between that of lambda 0.75 everywhere and udiffse+'s 1.5."""
    _, y = gaussian_pair(4)
    y, seeds = y[:64], range(64)
    plus = regression(run("udiffse+", blind_problem(y, seeds)), y)
    lips = regression(run("udiffse+lips", lips_problem(y, 1.0, seeds), weight_follows_presence=False), y)
    follows = regression(run("udiffse+lips", lips_problem(y, 1.0, seeds)), y)  # the default
    assert lips + 0.01 < follows < plus - 0.01, (lips, follows, plus)


TRACKED_RECIPE = {"noise_model": "tracked", "wiener_output": True, "wiener_keeps_subtraction": True,
                  "input_mix_from_db": 8.0, "input_mix_full_db": 18.0}


def test_refit_on_lip_frames_mixes_the_refit_and_the_tracked_recipe_by_the_share_of_lips():
    """refit_on_lip_frames: audio-only input is udiffse+ with the tracked-noise recipe sample for
    sample, and so are lips trusted nowhere; lips trusted everywhere give udiffse+lips with the
    refitted noise and the sample as output (the same estimate up to the order of its noise
    draws); half the frames reliable lies between the two."""
    _, y = gaussian_pair(5)
    y, seeds = y[:16], range(16)
    hybrid = {**TRACKED_RECIPE, "refit_on_lip_frames": True}
    tracked = run("udiffse+", blind_problem(y, seeds), **TRACKED_RECIPE)
    assert torch.equal(tracked, run("udiffse+lips", blind_problem(y, seeds), **hybrid))
    assert torch.allclose(tracked, run("udiffse+lips", lips_problem(y, 0.0, seeds), **hybrid), atol=1e-5)
    refitted = run("udiffse+lips", lips_problem(y, 1.0, seeds))
    trusted = run("udiffse+lips", lips_problem(y, 1.0, seeds), **hybrid)  # the same, its noise drawn in another order
    assert regression(trusted, y) == pytest.approx(regression(refitted, y), abs=0.02)
    assert regression(trusted, y) < regression(tracked, y) - 0.1  # the two recipes differ on this input
    half = SHAPE[3] // 2
    reliability = torch.cat([torch.ones(half), torch.zeros(SHAPE[3] - half)])
    mixed = regression(run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid), y)
    assert regression(trusted, y) + 0.05 < mixed < regression(tracked, y) - 0.01  # one share for the whole item


def test_the_lips_weight_follows_the_tracked_snr_when_asked():
    """noisy_lips_likelihood_weight: the weight at or below noisy_snr_db, the usual one at or above
    quiet_snr_db, linear between; an input below the range is enhanced exactly as with that weight
    throughout, one above it exactly as without the option; the weight used is reported."""
    from avdiff.posterior.udiffse_lips import LipWeightedSettings

    settings = LipWeightedSettings(noisy_lips_likelihood_weight=0.25, noisy_snr_db=5.0, quiet_snr_db=10.0)
    assert settings.lips_weight(torch.tensor([-5.0, 5.0, 7.5, 10.0, 30.0])).tolist() == [0.25, 0.25, 0.5, 0.75, 0.75]
    assert settings.needs_input_noise() and not LipWeightedSettings().needs_input_noise()
    with pytest.raises(ValueError, match="quiet_snr_db"):
        LipWeightedSettings(noisy_snr_db=10.0, quiet_snr_db=5.0)
    _, y = gaussian_pair(6)
    y, seeds = y[:16], range(16)
    low = run("udiffse+lips", lips_problem(y, 1.0, seeds), lips_likelihood_weight=0.25)
    noisy = run("udiffse+lips", lips_problem(y, 1.0, seeds), noisy_lips_likelihood_weight=0.25,
                noisy_snr_db=200.0, quiet_snr_db=210.0)  # every input counts as noisy
    assert torch.allclose(low, noisy, atol=1e-6)
    usual = run("udiffse+lips", lips_problem(y, 1.0, seeds))
    entry = method_entry("udiffse+lips")
    quiet = entry.method_class(entry.settings({"noisy_lips_likelihood_weight": 0.25, "noisy_snr_db": -210.0,
                                               "quiet_snr_db": -200.0})).run(lips_problem(y, 1.0, seeds))
    assert torch.allclose(usual, quiet.sample, atol=1e-6)
    assert quiet.report["lips_likelihood_weight"] == [0.75] * 16
    assert regression(low, y) < regression(usual, y) - 0.05  # the weight matters on this input


def test_the_recipes_share_is_one_per_item_or_a_slow_average_per_frame():
    """recipe_share_seconds 0: each item's mean reliability; > 0: the mean over that many seconds around
    each frame, 1 deep inside reliable spans, 0 deep inside masked ones, constant for a constant input."""
    from avdiff.posterior.udiffse_lips import lip_share

    reliability = torch.zeros(2, 500)  # 4 s of STFT frames
    reliability[0, :250] = 1
    reliability[1] = 0.5
    assert lip_share(reliability).tolist() == [0.5, 0.5]
    slow = lip_share(reliability, 1.0)  # 125 STFT frames
    assert slow.shape == (2, 500)
    assert slow[0, :180].eq(1).all() and slow[0, 320:].eq(0).all() and 0.4 < slow[0, 250] < 0.6
    assert torch.allclose(slow[1], torch.full((500,), 0.5))  # the ends are averaged over what they have
    assert (slow[0, 1:] <= slow[0, :-1] + 1e-6).all()  # no jumps: it falls steadily across the edge


def test_a_slow_recipe_share_gives_masked_spans_the_tracked_recipe_frame_by_frame():
    """recipe_share_seconds > 0 with half the frames reliable: deep in the unreliable half every frame is
    the tracked recipe's (as if the lips were trusted nowhere), while the reliable half behaves as the
    refit recipe does with the lips trusted everywhere (the exact denoiser treats frames apart)."""
    _, y = gaussian_pair(5)
    y, seeds = y[:16], range(16)
    hybrid = {**TRACKED_RECIPE, "refit_on_lip_frames": True}
    frames, half = SHAPE[3], SHAPE[3] // 2
    reliability = torch.cat([torch.ones(half), torch.zeros(frames - half)])
    slow = run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid, recipe_share_seconds=0.016)  # +-1 frame
    tracked = run("udiffse+lips", lips_problem(y, 0.0, seeds), **hybrid)
    trusted = run("udiffse+lips", lips_problem(y, 1.0, seeds), **hybrid)
    deep_masked, deep_reliable = slice(half + 1, None), slice(None, half - 1)
    assert torch.allclose(slow[..., deep_masked], tracked[..., deep_masked], atol=1e-4)
    error = lambda estimate: float((estimate[..., deep_reliable] - y[..., deep_reliable]).abs().square().mean())  # noqa: E731
    assert abs(error(slow) - error(trusted)) < 0.1 * abs(error(trusted) - error(tracked)), (
        error(slow), error(trusted), error(tracked))


def test_a_share_raised_to_a_power_leans_a_partly_reliable_item_to_the_recipe_without_lips():
    """recipe_share_power: half the frames reliable, the share 0.5 ** power mixes the recipes; a high
    power gives the tracked recipe's estimate (as if the lips were trusted nowhere)."""
    _, y = gaussian_pair(5)
    y, seeds = y[:16], range(16)
    hybrid = {**TRACKED_RECIPE, "refit_on_lip_frames": True}
    half = SHAPE[3] // 2
    reliability = torch.cat([torch.ones(half), torch.zeros(SHAPE[3] - half)])
    tracked = regression(run("udiffse+lips", lips_problem(y, 0.0, seeds), **hybrid), y)
    plain = regression(run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid), y)
    leaning = regression(run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid, recipe_share_power=3.0), y)
    assert abs(leaning - tracked) < 0.5 * abs(plain - tracked), (plain, leaning, tracked)
    nowhere = run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid, recipe_share_power=60.0)
    assert regression(nowhere, y) == pytest.approx(tracked, abs=0.02)


def test_the_recipe_share_ramps_between_two_shares_of_reliable_lips():
    """recipe_share_low/high: at or below low the recipe without lips, at or above high the one with
    lips, linear between (then the power); a ramp that does not rise is refused."""
    from avdiff.posterior.udiffse_lips import LipWeightedSettings

    reliability = torch.tensor([[1.0] * 4 + [0.0] * 6, [1.0] * 6 + [0.0] * 4, [1.0] * 8 + [0.0] * 2])  # 0.4, 0.6, 0.8
    ramp = LipWeightedSettings(recipe_share_low=0.5, recipe_share_high=0.75)
    assert torch.allclose(ramp.recipe_share(reliability), torch.tensor([0.0, 0.4, 1.0]))
    squared = LipWeightedSettings(recipe_share_low=0.5, recipe_share_high=0.75, recipe_share_power=2.0)
    assert torch.allclose(squared.recipe_share(reliability), torch.tensor([0.0, 0.16, 1.0]))
    assert torch.allclose(LipWeightedSettings().recipe_share(reliability), torch.tensor([0.4, 0.6, 0.8]))
    with pytest.raises(ValueError, match="recipe_share_low < recipe_share_high"):
        LipWeightedSettings(recipe_share_low=0.75, recipe_share_high=0.5)


def test_a_ramp_that_starts_above_the_share_gives_the_recipe_without_lips():
    """Half the frames reliable and recipe_share_low at 0.5: the item gets the tracked recipe's noise and
    output whole, exactly as a share of 0 does (power 60), not the half mix of the plain share."""
    _, y = gaussian_pair(5)
    y, seeds = y[:8], range(8)
    hybrid = {**TRACKED_RECIPE, "refit_on_lip_frames": True}
    half = SHAPE[3] // 2
    reliability = torch.cat([torch.ones(half), torch.zeros(SHAPE[3] - half)])
    ramped = run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid, recipe_share_low=0.5, recipe_share_high=0.75)
    nowhere = run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid, recipe_share_power=60.0)
    plain = run("udiffse+lips", lips_problem(y, reliability, seeds), **hybrid)
    assert torch.allclose(ramped, nowhere, atol=1e-6) and not torch.allclose(ramped, plain, atol=1e-3)


def test_a_tracked_snr_at_or_below_the_threshold_keeps_the_recipe_without_lips():
    """tracked_recipe_below_db: the share is 0 where the tracked SNR is at or below it, rising over 1 dB
    to the lips' own share; it asks for the tracked noise, and without a tracked SNR changes nothing."""
    from avdiff.posterior.udiffse_lips import LipWeightedSettings

    settings = LipWeightedSettings(tracked_recipe_below_db=0.0)
    reliable = torch.ones(3, 10)
    assert torch.allclose(settings.recipe_share(reliable, torch.tensor([-1.0, 0.5, 2.0])), torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(settings.recipe_share(reliable), torch.ones(3))
    assert settings.needs_input_noise() and not LipWeightedSettings().needs_input_noise()
