"""The enhancement methods, the `udiffse-paper` preset, and how a method name resolves.

`PosteriorSettings` itself (every setting, with our defaults and what the paper does) lives
in the config schema, so `avdiff enhance` and config files read the same defaults.
"""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

from avdiff.config.schema import EnhancementMethod, PosteriorSettings

# UDiffSE as published (Nortier, Sadeghi, Serizel 2024, and its reference code): OUVE prior on
# 30 levels, Euler-Maruyama predictor + one prior-only Langevin corrector (snr 0.5, step
# (snr std)^2), likelihood lambda 1.5 every 2nd level, 5 EM iterations of 2 parallel samples,
# start at t = 1 from X + std(1) n, X scaled to max |X| = 1, NMF rank 4 from uniform random
# factors with one multiplicative update per M-step.
UDIFFSE_PAPER = PosteriorSettings(
    steps=30, schedule="ouve", predictor="euler_maruyama", start_sigma=None, start_point="scaled_observation",
    normalize="spectrogram_max", corrector_steps=1, snr=0.5, corrector_step_factor=1.0, corrector_likelihood=False,
    likelihood_weight=1.5, likelihood_every=2, rescale_likelihood=False, clamp_gain=False, nmf_rank=4,
    nmf_iterations=1, nmf_init="uniform", nmf_refit_below=None, em_iterations=5, num_samples=2,
)

PRESETS: dict[str, tuple[str, PosteriorSettings]] = {"udiffse-paper": ("udiffse", UDIFFSE_PAPER)}
METHOD_CHOICES: tuple[str, ...] = get_args(EnhancementMethod)
METHODS: tuple[str, ...] = tuple(name for name in METHOD_CHOICES if name not in PRESETS)


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
    return settings if steps is None else replace(settings, steps=steps)
