"""Settings of the posterior samplers, our defaults and the `udiffse-paper` preset.

Our defaults were chosen on real speech (BENCHMARKS.md, "Posterior sampling settings"). The
preset reproduces UDiffSE as published (Nortier, Sadeghi, Serizel 2024, and its reference
code): each field below that differs from our default says what the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args, get_origin, get_type_hints

METHODS = ("udiffse", "udiffse+", "dps")


@dataclass(frozen=True)
class PosteriorSettings:
    """How a posterior sampler runs; see `avdiff.pipeline.posterior` for the maths."""

    steps: int = 30
    # Noise levels: the model's own schedule ("model") or SGMSE+'s OUVE time grid ("ouve",
    # linear in diffusion time from t_max to t_eps, the paper's).
    schedule: Literal["model", "ouve"] = "model"
    # Reverse-diffusion step on the variance-exploding view with a Tweedie last step (ours), or
    # Euler-Maruyama on the OUVE SDE in its own coordinates with dt = t_start / steps (paper).
    predictor: Literal["reverse_diffusion", "euler_maruyama"] = "reverse_diffusion"
    # First noise level in units of sigma_data; None = the schedule's largest (paper: t = 1).
    start_sigma: float | None = 10.0
    # Start at y + sigma n ("observation"), or at y + std(t) n in the OUVE process's own
    # coordinates, i.e. y / s(t) + sigma n unscaled ("scaled_observation", paper).
    start_point: Literal["observation", "scaled_observation"] = "observation"
    # Input scale: the waveform's peak is 1 ("peak", as in training), or the compressed
    # spectrogram's largest magnitude is 1 ("spectrogram_max", paper).
    normalize: Literal["peak", "spectrogram_max"] = "peak"
    corrector_steps: int = 0  # Langevin steps per level (paper: 1)
    snr: float = 0.5
    # Langevin step = corrector_step_factor * (snr * sigma)^2 per real component:
    # 2 is SGMSE+'s annealed Langevin step, 1 is UDiffSE's (half of SGMSE+'s).
    corrector_step_factor: float = 2.0
    corrector_likelihood: bool = True  # the corrector follows the posterior score (paper: the prior's)
    likelihood_weight: float = 1.5  # lambda
    likelihood_every: int = 1  # the likelihood step runs at every k-th level (paper: 2)
    # lambda is the total weight: each step that runs weighs lambda * likelihood_every.
    # False = lambda per step, as the paper does (its total weight is lambda / likelihood_every).
    rescale_likelihood: bool = True
    clamp_gain: bool = True  # the closed-form pull towards y never overshoots y (paper: no clamp)
    nmf_rank: int = 4
    nmf_iterations: int = 1  # multiplicative updates per refit (UDiffSE: 1)
    nmf_init: Literal["scaled", "uniform"] = "scaled"  # uniform: W, H ~ U(0, 1) (paper)
    # udiffse+ / dps: refit the noise model only at levels sigma <= this * sigma_data (None =
    # every level): at high levels D(x) is still blurry and the NMF would absorb speech.
    nmf_refit_below: float | None = 3.0
    em_iterations: int = 5  # udiffse only
    num_samples: int = 2  # parallel posterior samples per input, averaged (every method)
    dps_weight: float = 1.0

    def __post_init__(self) -> None:
        for name, hint in get_type_hints(type(self)).items():
            if get_origin(hint) is Literal and getattr(self, name) not in get_args(hint):
                raise ValueError(f"posterior setting {name} must be one of {get_args(hint)}, got {getattr(self, name)!r}")
        positive = ("steps", "likelihood_every", "nmf_rank", "em_iterations", "num_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"posterior setting {name} must be >= 1, got {getattr(self, name)}")
        if self.corrector_steps < 0 or self.nmf_iterations < 0:
            raise ValueError("corrector_steps and nmf_iterations must be >= 0")
        if self.predictor == "euler_maruyama" and self.schedule != "ouve":
            raise ValueError("predictor euler_maruyama integrates the OUVE SDE: set schedule='ouve'")

    def step_weight(self) -> float:
        """lambda of one likelihood step, given how often it runs."""
        return self.likelihood_weight * (self.likelihood_every if self.rescale_likelihood else 1)


# UDiffSE as published: OUVE prior on 30 levels, Euler-Maruyama predictor + one prior-only
# Langevin corrector (snr 0.5, step (snr std)^2), likelihood lambda 1.5 every 2nd level, 5 EM
# iterations of 2 parallel samples, start at t = 1 from X + std(1) n, X scaled to max |X| = 1,
# NMF rank 4 from uniform random factors with one multiplicative update per M-step.
UDIFFSE_PAPER = PosteriorSettings(
    steps=30, schedule="ouve", predictor="euler_maruyama", start_sigma=None, start_point="scaled_observation",
    normalize="spectrogram_max", corrector_steps=1, snr=0.5, corrector_step_factor=1.0, corrector_likelihood=False,
    likelihood_weight=1.5, likelihood_every=2, rescale_likelihood=False, clamp_gain=False, nmf_rank=4,
    nmf_iterations=1, nmf_init="uniform", nmf_refit_below=None, em_iterations=5, num_samples=2,
)

PRESETS: dict[str, tuple[str, PosteriorSettings]] = {"udiffse-paper": ("udiffse", UDIFFSE_PAPER)}
METHOD_CHOICES = METHODS + tuple(PRESETS)


def resolve_method(name: str, settings: PosteriorSettings | None = None) -> tuple[str, PosteriorSettings]:
    """(method, settings) for a method or preset name; a preset brings its own settings."""
    if name in PRESETS:
        method, preset = PRESETS[name]
        return method, preset if settings is None else settings
    if name not in METHODS:
        raise ValueError(f"unknown enhancement method {name!r}; choose one of {', '.join(METHOD_CHOICES)}")
    return name, settings or PosteriorSettings()


def with_steps(settings: PosteriorSettings, steps: int | None) -> PosteriorSettings:
    """`settings` with `steps` replaced when given."""
    return settings if not steps else replace(settings, steps=steps)
