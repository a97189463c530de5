"""The settings shared by posterior methods, as small frozen dataclasses a method combines.

A method's settings class inherits the groups it uses and adds its own fields: the Langevin
corrector (`CorrectorSettings`), the closed-form pull towards y (`PullSettings`), the noise
model refitted during a pass (`RefitSettings`), and last `PassSettings`, which every method
has (listed last so that a group's field, `predictor`, overrides its class constant). Each
field's help is the comment written into configs and the `avdiff enhance` flag's help. The
defaults were chosen on real speech (BENCHMARKS.md, "Posterior sampling settings");
`udiffse-paper` (avdiff.posterior.udiffse) is UDiffSE as published.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

from avdiff.audio.chunks import ENHANCEMENT_OVERLAP_FRAMES
from avdiff.config.loader import option
from avdiff.config.schema import check_at_least, check_finite


def check_settings(settings: Any) -> None:
    """Finite numbers, Literal fields among their choices, and the count fields >= 1."""
    check_finite(settings)
    for name, hint in get_type_hints(type(settings)).items():
        if get_origin(hint) is Literal and getattr(settings, name) not in get_args(hint):
            raise ValueError(f"posterior setting {name} must be one of {get_args(hint)}, got {getattr(settings, name)!r}")
    names = {f.name for f in fields(settings)}
    for name in ("steps", "likelihood_every", "nmf_rank", "em_iterations", "num_samples"):
        if name in names and getattr(settings, name) < 1:
            raise ValueError(f"posterior setting {name} must be >= 1, got {getattr(settings, name)}")
    for name in ("corrector_steps", "nmf_iterations"):
        if name in names and getattr(settings, name) < 0:
            raise ValueError(f"posterior setting {name} must be >= 0, got {getattr(settings, name)}")
    non_negative = ("likelihood_weight", "lips_likelihood_weight", "snr", "corrector_step_factor", "dps_weight",
                    "sampler_eta")
    check_at_least(settings, 0.0, *(name for name in non_negative if name in names))


@dataclass(frozen=True)
class PassSettings:
    """What every reverse pass over the noisy spectrogram needs."""

    # The predictor of a pass; methods that offer a choice (PullSettings) make it a field.
    predictor: ClassVar[str] = "reverse_diffusion"

    steps: int = option(12, "noise levels of one reverse pass (1 network call each without a corrector; chosen "
                        "from BENCHMARKS.md, 'Quality against network calls')")
    schedule: Literal["model", "ouve"] = option(
        "model", "noise levels: the model's own schedule, or SGMSE+'s OUVE time grid (ouve, the paper's)")
    start_sigma: float | None = option(
        10.0, "first noise level in units of sigma_data; null = the schedule's largest (paper: t = 1)")
    start_point: Literal["observation", "scaled_observation"] = option(
        "observation", "start at y + sigma n, or at y + std(t) n in the OUVE process's coordinates (paper)")
    normalize: Literal["peak", "spectrogram_max"] = option(
        "peak", "input scale: waveform peak 1 (as in training) or largest spectrogram magnitude 1 (paper)")
    likelihood_weight: float = option(1.5, "lambda, the weight of the likelihood")
    likelihood_every: int = option(1, "the likelihood step (and a refit of the noise model) runs at every k-th "
                                   "level (paper: 2)")
    nmf_rank: int = option(4, "rank of the NMF noise variance model")
    nmf_init: Literal["scaled", "uniform"] = option("scaled", "NMF start: scaled to the input, or W, H ~ U(0, 1) (paper)")
    num_samples: int = option(2, "parallel posterior samples per input, averaged")

    def __post_init__(self) -> None:
        check_settings(self)
        for check in ("check_predictor", "check_refit", "check_input_noise"):  # the groups a method's class combines
            if hasattr(self, check):
                getattr(self, check)()


@dataclass(frozen=True)
class CorrectorSettings:
    """The annealed Langevin corrector of a predictor-corrector pass."""

    corrector_steps: int = option(0, "annealed Langevin steps per level (paper: 1)")
    snr: float = option(0.5, "Langevin corrector signal-to-noise ratio")
    corrector_step_factor: float = option(
        2.0, "Langevin step = factor * (snr sigma)^2: 2 is SGMSE+'s, 1 is UDiffSE's")
    corrector_likelihood: bool = option(True, "the corrector follows the posterior score (paper: the prior's)")


@dataclass(frozen=True)
class PullSettings:
    """UDiffSE's closed-form likelihood step towards y after each predictor step."""

    predictor: Literal["reverse_diffusion", "euler_maruyama"] = option(  # type: ignore[misc]
        "reverse_diffusion", "reverse-diffusion step with a Tweedie last step, or Euler-Maruyama on the OUVE SDE "
        "in its own coordinates with dt = t_start / steps (the paper's; needs schedule ouve)")
    rescale_likelihood: bool = option(
        True, "lambda is the total weight (each step weighs lambda * likelihood_every); false = per step (paper)")
    clamp_gain: bool = option(True, "the closed-form pull towards y never overshoots y (paper: no clamp)")

    def step_weight(self, weight: Any = None) -> Any:
        """lambda (or `weight`, a float or a tensor of them) of one likelihood step, given how often it runs."""
        every = getattr(self, "likelihood_every")
        weight = getattr(self, "likelihood_weight") if weight is None else weight
        return weight * (every if self.rescale_likelihood else 1)

    def check_predictor(self) -> None:
        if self.predictor == "euler_maruyama" and getattr(self, "schedule") != "ouve":
            raise ValueError("predictor euler_maruyama integrates the OUVE SDE: set schedule='ouve'")


@dataclass(frozen=True)
class InputNoiseSettings:
    """What the input's own noise, tracked on y before sampling, decides (issue 26; the defaults are
    udiffse+ as before, `models/speech-prior` sets the measured choice in its config)."""

    noise_model: Literal["refit", "tracked"] = option(
        "refit", "the likelihood's noise variance: an NMF refitted from |y - D(x)|^2 during the pass (refit), or "
        "the noise tracked on y before sampling and held (tracked: it cannot absorb speech the prior has not drawn)")
    start_noise_multiple: float | None = option(
        None, "start at this many times the input's tracked noise level (sigma_data units, at most start_sigma): "
        "a quiet input starts low and is left nearly alone; null = always start_sigma")
    wiener_output: bool = option(
        False, "output y through the Wiener filter of the samples' power against the noise variance (y's phase, no "
        "invented detail) instead of the samples' mean")
    wiener_keeps_subtraction: bool = option(
        False, "the Wiener gain is never below magnitude spectral subtraction's sqrt(1 - V / |y|^2): what the "
        "noise estimate alone leaves as speech is kept where the prior drew less")
    input_mix_from_db: float | None = option(
        None, "mix the input back into the output by its SNR estimate (input_mix_by): none at or below this many "
        "dB, all of it at input_mix_full_db (an input with little noise is given back); null = never")
    input_mix_full_db: float = option(20.0, "SNR (dB) at or above which the input is given back whole")
    input_mix_by: Literal["frame", "frame_or_tracker"] = option(
        "frame", "the SNR estimate the input mix follows: the frame-level one (frame: right at high SNR, but reads "
        "bursty or low-frequency noise as speech), or, where the tracker's SNR is at most tracker_trusted_below_db, "
        "the lower of the frame-level one and the tracker's plus tracker_snr_bias_db (frame_or_tracker)")
    tracker_snr_bias_db: float = option(
        8.0, "how many dB the tracker's SNR reads low at high SNR (it takes weak speech for noise); added to it "
        "where input_mix_by is frame_or_tracker")
    tracker_trusted_below_db: float = option(
        5.0, "frame_or_tracker consults the tracker only where it reads at most this SNR (dB): above it, some clean "
        "recordings read 12 dB low and would lose their detail")
    input_mix_window_frames: int | None = option(
        None, "decide the input mix on windows of this many STFT frames, laid out and cross-faded as enhancement "
        "chunks of that length, so that a longer chunk gives back what chunks of this length would (the SNR "
        "estimates read a long stretch differently); null = one decision per chunk")

    def needs_input_noise(self) -> bool:
        """Whether any of these settings looks at the noise tracked on the input."""
        return (self.noise_model == "tracked" or self.start_noise_multiple is not None or self.wiener_output
                or self.input_mix_from_db is not None)

    def check_input_noise(self) -> None:
        if self.start_noise_multiple is not None and self.start_noise_multiple <= 0:
            raise ValueError(f"posterior setting start_noise_multiple must be > 0, got {self.start_noise_multiple}")
        if self.input_mix_from_db is not None and self.input_mix_full_db <= self.input_mix_from_db:
            raise ValueError("posterior setting input_mix_full_db must be above input_mix_from_db")
        if self.input_mix_window_frames is not None and self.input_mix_window_frames <= ENHANCEMENT_OVERLAP_FRAMES:
            raise ValueError(f"posterior setting input_mix_window_frames must exceed {ENHANCEMENT_OVERLAP_FRAMES} frames")


@dataclass(frozen=True)
class RefitSettings:
    """The noise model refitted from the residual of the denoised estimate during one pass."""

    nmf_iterations: int = option(1, "multiplicative NMF updates per refit level when nmf_pass_updates is null")
    nmf_pass_updates: int | None = option(
        24, "NMF updates over one pass, spread evenly over the levels where the noise model is refitted (at least "
        "one each), so few levels fit it as well as many; null = nmf_iterations each")
    nmf_refit_below: float | None = option(
        5.0, "refit the noise model only at sigma <= this * sigma_data (null = every level)")

    def check_refit(self) -> None:
        if (self.nmf_pass_updates or 0) < 0:
            raise ValueError(f"posterior setting nmf_pass_updates must be >= 0, got {self.nmf_pass_updates}")
