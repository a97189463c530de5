"""Diffusion posterior sampling for unsupervised speech enhancement: one module per method.

The clean-speech prior (the trained score network, with the lips or the null condition) is
combined at test time with a likelihood for the noisy observation y = x + n, n complex Gaussian
with an NMF variance V (`avdiff.posterior.nmf`), all on the compressed spectrogram as UDiffSE
does. Each method is a registered class with its own frozen settings
(`avdiff.posterior.registry.METHODS`): `udiffse` (UDiffSE's EM; `udiffse-paper` is it as
published), `udiffse+` (one pass, noise refitted on the way; the default), `dps` (the
likelihood's gradient through the network), `diffpir` (the likelihood inside the denoiser,
any sampler) and `udiffse+lips` (udiffse+ in which the lips' predicted envelope keeps the target
out of the noise model and the likelihood weighs less where the lips are reliable); the presets
`udiffse-paper`, `av-udiffse` and `fudiffse-paper` are the published procedures. The VAE
family (`avdiff.posterior.vae_base`), run on a speech VAE instead of a score network: `vae-mcem`
(Monte-Carlo EM, audio-only or with the lips) and `switching-vae` (frame by frame between the
audio-visual and the audio-only model). Importing
the package registers them; a method of your own is one module with a `@register_method` class
(see `avdiff.posterior.base`). Target-speaker extraction (two sources under one mixture, not a
registered enhancement method) is `avdiff.posterior.extraction`.
"""

from __future__ import annotations

from avdiff.posterior import (  # noqa: F401 - register the methods
    diffpir,
    dps,
    switching_vae,
    udiffse,
    udiffse_lips,
    udiffse_plus,
    vae_mcem,
)
from avdiff.posterior.base import LipEvidence, PosteriorMethod, PosteriorOutput, PosteriorProblem
from avdiff.posterior.registry import METHODS, MethodEntry, method_entry, register_method, register_preset
from avdiff.posterior.schedule import PosteriorSchedule, nmf_updates_per_level, posterior_schedule, power

__all__ = ["METHODS", "LipEvidence", "MethodEntry", "PosteriorMethod", "PosteriorOutput", "PosteriorProblem",
           "PosteriorSchedule", "method_entry", "nmf_updates_per_level", "posterior_schedule", "power", "register_method",
           "register_preset"]
