"""`switching-vae`: Monte-Carlo EM that chooses, frame by frame, between the audio-visual and the
audio-only speech model (after Sadeghi & Alameda-Pineda, ICASSP 2021).

Two chains run side by side: one under the audio-visual VAE (the lips set the prior and the
decoder) and one under the audio-only model (the same conditional VAE reading its null
embedding, or an audio-only VAE). A hidden switch m_t in {audio-visual, audio-only} follows a
two-state Markov chain that stays with probability `switch_stay`; after each E-step each frame's
evidence for a branch is the ELBO of a Gaussian fitted to that chain's samples,
E[log p(x_t | z_t)] - KL(q_t || p(z_t | branch)), and forward-backward gives the posterior
P(m_t = audio-visual), which weighs the two branches in the M-step and in the Wiener output.
Where the lips are occluded, wrong or another person's, the audio-visual branch explains x
worse and the switch moves to audio-only. Frames without usable lips are audio-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avdiff.config.loader import option
from avdiff.posterior.registry import register_method
from avdiff.posterior.vae_base import VAEMethod, VAEOutput, VAEProblem
from avdiff.posterior.vae_mcem import (
    MCEM,
    ChainDraws,
    LatentChain,
    MCEMSettings,
    complex_gaussian_log_likelihood,
    start_chain,
)


@dataclass(frozen=True)
class SwitchingSettings(MCEMSettings):
    """vae-mcem's settings and the switch's Markov chain."""

    switch_stay: float = option(0.9, "probability that the switch keeps its branch from one STFT frame to the next")
    switch_prior: float = option(0.5, "prior probability of the audio-visual branch at the first frame")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 < self.switch_stay < 1 and 0 < self.switch_prior < 1):
            raise ValueError(f"switch_stay and switch_prior are probabilities in (0, 1), got "
                             f"{self.switch_stay}, {self.switch_prior}")


def branch_evidence(chain: LatentChain, draws: ChainDraws, power: Tensor, noise_variance: Tensor,
                    gain: Tensor) -> Tensor:
    """(T,) E_q[log p(x_t | z)] - KL(q_t || p(z_t | branch)), q_t the Gaussian fitted to the chain's
    kept samples of frame t (its variance floored at the proposal's, for chains that rarely moved)."""
    likelihood = complex_gaussian_log_likelihood(power, gain * draws.variances + noise_variance).mean(0)
    mean = draws.latents.mean(0)
    variance = draws.latents.var(0, unbiased=False).clamp_min(chain.proposal_std**2)
    prior_variance = chain.prior_log_var.exp()
    kl = 0.5 * (chain.prior_log_var - variance.log() + (variance + (mean - chain.prior_mean).square())
                / prior_variance - 1).sum(-1)
    return likelihood - kl


def forward_backward(evidence: np.ndarray, stay: float, prior: float) -> np.ndarray:
    """Posterior P(m_t = 0) of a two-state hidden Markov chain with per-frame log evidence
    (T, 2), symmetric transitions (stay on the diagonal) and initial probability `prior` of state 0."""
    frames = len(evidence)
    log_transition = np.log(np.array([[stay, 1 - stay], [1 - stay, stay]]))
    log_alpha, log_beta = np.empty((frames, 2)), np.zeros((frames, 2))
    log_alpha[0] = np.log([prior, 1 - prior]) + evidence[0]
    for t in range(1, frames):
        log_alpha[t] = evidence[t] + np.logaddexp.reduce(log_alpha[t - 1][:, None] + log_transition, axis=0)
    for t in range(frames - 2, -1, -1):
        log_beta[t] = np.logaddexp.reduce(log_transition + evidence[t + 1] + log_beta[t + 1], axis=1)
    log_posterior = log_alpha + log_beta
    log_posterior -= np.logaddexp(log_posterior[:, :1], log_posterior[:, 1:])
    return np.exp(log_posterior[:, 0])


class SwitchingMCEM(MCEM):
    """MCEM over the audio-visual chain (branch 0) and the audio-only chain (branch 1)."""

    def __init__(self, problem: VAEProblem, settings: SwitchingSettings, chains: list[LatentChain],
                 usable: Tensor) -> None:
        super().__init__(problem, settings, chains)
        self.usable = usable  # (T,) frames with usable lips; the others are audio-only

    def branch_weights(self, draws: list[ChainDraws]) -> list[Tensor]:
        settings, V, g = self.settings, self.noise_variance(), self.gain[:, None]
        evidence = torch.stack([branch_evidence(chain, d, self.power, V, g) for chain, d in zip(self.chains, draws)], 1)
        evidence[~self.usable, 0] = -math.inf
        audio_visual = forward_backward(evidence.double().cpu().numpy(), settings.switch_stay,  # type: ignore[attr-defined]
                                        settings.switch_prior)  # type: ignore[attr-defined]
        weight = torch.from_numpy(audio_visual).float().to(self.power.device)
        return [weight, 1 - weight]


@register_method("switching-vae")
class SwitchingVAE(VAEMethod):
    """Monte-Carlo EM that switches frame by frame between the audio-visual and the audio-only VAE
    (Sadeghi & Alameda-Pineda 2021); the per-frame switch posterior is reported."""

    settings_class = SwitchingSettings

    @torch.no_grad()
    def run(self, problem: VAEProblem) -> VAEOutput:
        settings = self.settings
        if problem.lips is None or not problem.network.audio_visual:  # nothing to switch to: audio-only
            chain = start_chain(problem, settings, None, None)
            return MCEM(problem, settings, [chain]).run(self.name)
        usable = problem.lips_mask if problem.lips_mask is not None else torch.ones(len(problem.lips), dtype=torch.bool)
        chains = [start_chain(problem, settings, problem.lips, usable), start_chain(problem, settings, None, None)]
        em = SwitchingMCEM(problem, settings, chains, usable)
        out = em.run(self.name)
        out.switch = em.weights[0]
        return out
