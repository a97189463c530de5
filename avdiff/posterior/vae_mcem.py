"""`vae-mcem`: VAE-based unsupervised speech enhancement by Monte-Carlo EM.

The method of Leglaive, Girin and Horaud (MLSP 2018) with an audio-only VAE, and of Sadeghi et
al. (IEEE/ACM TASLP 2020) with the audio-visual conditional VAE (the lips set the latent prior
and the decoder; frames without usable lips read the null embedding):

- E-step: a random-walk Metropolis-Hastings chain on z_t per frame, targeting
  p(z_t | x_t) ~ N_c(x_t; 0, g_t sigma^2(z_t) + V_t) p(z_t); the last `mh_kept` of `mh_steps`
  states are the Monte-Carlo samples (the chain carries over from one iteration to the next);
- M-step: multiplicative updates of the NMF noise model V = W H and of the gains g that raise the
  Monte-Carlo estimate of the expected complete-data log-likelihood (exponent 1/2, as published);
- output: x times the Wiener gain E[g sigma^2 / (g sigma^2 + V)] over fresh samples.

The chain starts at the encoder's mean for the noisy frames. `MCEM` runs any number of chains
(branches) with per-frame weights; the switching VAE (`avdiff.posterior.switching_vae`) is two
of them with weights from a hidden Markov switch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from avdiff.config.loader import option
from avdiff.posterior.nmf import FLOOR, NoiseModel, normalised
from avdiff.posterior.registry import register_method
from avdiff.posterior.settings import check_settings
from avdiff.posterior.vae_base import VAEMethod, VAEOutput, VAEProblem

if TYPE_CHECKING:  # annotations only: the registry loads without the networks
    from avdiff.models.speech_vae import SpeechVAE


@dataclass(frozen=True)
class MCEMSettings:
    """Monte-Carlo EM with a speech VAE and an NMF noise model; defaults are the papers'."""

    em_iterations: int = option(100, "EM iterations at most (the papers: 100)")
    tolerance: float = option(1e-4, "stop when the cost changes by less than this between iterations (0: never)")
    mh_steps: int = option(40, "Metropolis-Hastings steps per E-step (the papers: 40)")
    mh_kept: int = option(10, "the last steps' states kept as samples (the papers: 10, after a burn-in of 30)")
    proposal_std: float = option(0.1, "standard deviation of the random-walk proposal (the papers: variance 0.01)")
    nmf_rank: int = option(10, "rank of the NMF noise model (the papers: 10)")
    nmf_init: Literal["scaled", "uniform"] = option("scaled", "NMF start: scaled to the input, or W, H ~ U(0, 1)")

    def __post_init__(self) -> None:
        check_settings(self)
        if not 1 <= self.mh_kept <= self.mh_steps:
            raise ValueError(f"mh_kept must be in 1 .. mh_steps ({self.mh_steps}), got {self.mh_kept}")
        if not self.proposal_std > 0 or self.tolerance < 0:
            raise ValueError(f"proposal_std must be > 0 and tolerance >= 0, got {self.proposal_std}, {self.tolerance}")


def complex_gaussian_log_likelihood(power: Tensor, variance: Tensor) -> Tensor:
    """log N_c(x; 0, v) summed over the last axis: -sum(log(pi v) + |x|^2 / v)."""
    return -(torch.log(math.pi * variance) + power / variance).sum(-1)


@dataclass
class ChainDraws:
    """The kept states of one chain: speech variances (R, T, F) and latents (R, T, L)."""

    variances: Tensor
    latents: Tensor


class LatentChain:
    """One Metropolis-Hastings chain of z (T, L), under one branch's prior and decoder (`features`:
    the branch's lip features, None for an audio-only VAE)."""

    def __init__(self, network: SpeechVAE, features: Tensor | None, start: Tensor, generator: torch.Generator,
                 proposal_std: float) -> None:
        self.network, self.features, self.generator, self.proposal_std = network, features, generator, proposal_std
        self.prior_mean, self.prior_log_var = network.prior(features, len(start))
        self.calls = 0
        self.z = start
        self.variance = self.decode(start)
        self.likelihood = self.prior = torch.zeros(len(start))  # of the current state; set by `draw`

    def decode(self, z: Tensor) -> Tensor:
        self.calls += 1
        return self.network.decode(z, self.features)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z_t | branch) per frame (T,), with its normalising constant."""
        squared = (z - self.prior_mean).square() * torch.exp(-self.prior_log_var)
        return -0.5 * (squared + self.prior_log_var + math.log(2 * math.pi)).sum(-1)

    def step(self, power: Tensor, noise_variance: Tensor, gain: Tensor) -> None:
        """One random-walk proposal per frame, accepted with the Metropolis-Hastings probability
        (the current state's log-likelihood and log-prior are those `draw` set and each step kept)."""
        proposal = self.z + self.proposal_std * torch.randn(self.z.shape, generator=self.generator).to(self.z)
        variance = self.decode(proposal)
        likelihood = complex_gaussian_log_likelihood(power, gain * variance + noise_variance)
        prior = self.log_prior(proposal)
        log_ratio = likelihood + prior - self.likelihood - self.prior
        accept = torch.rand(len(log_ratio), generator=self.generator).to(log_ratio).log() < log_ratio
        self.z = torch.where(accept[:, None], proposal, self.z)
        self.variance = torch.where(accept[:, None], variance, self.variance)
        self.likelihood = torch.where(accept, likelihood, self.likelihood)
        self.prior = torch.where(accept, prior, self.prior)

    def draw(self, power: Tensor, noise_variance: Tensor, gain: Tensor, steps: int, kept: int) -> ChainDraws:
        """Run `steps` steps under the current noise model and gains; the last `kept` states are the samples."""
        self.likelihood = complex_gaussian_log_likelihood(power, gain * self.variance + noise_variance)
        self.prior = self.log_prior(self.z)
        variances, latents = [], []
        for index in range(steps):
            self.step(power, noise_variance, gain)
            if index >= steps - kept:
                variances.append(self.variance)
                latents.append(self.z)
        return ChainDraws(torch.stack(variances), torch.stack(latents))


def expectation(draws: list[ChainDraws], weights: list[Tensor], function: object) -> Tensor:
    """sum_b w_b(t) mean_r function(sigma^2_{b,r}) -> (T, F): the expectation over the branches'
    samples, each frame weighted by its branches' weights."""
    return sum(w[:, None] * function(d.variances).mean(0) for d, w in zip(draws, weights))  # type: ignore[operator]


def m_step(power: Tensor, draws: list[ChainDraws], weights: list[Tensor], noise: NoiseModel,
           gain: Tensor) -> tuple[NoiseModel, Tensor]:
    """Multiplicative updates of W, H then the gains (T,), each with exponent 1/2 (frame-major
    power (T, F); the noise model is (1, F, K) x (1, K, T))."""
    W, H = noise.W[0], noise.H[0]
    g = gain[:, None]

    def moments() -> tuple[Tensor, Tensor]:
        V = (W @ H).T.clamp_min(FLOOR)
        return (expectation(draws, weights, lambda s: (g * s + V) ** -2),
                expectation(draws, weights, lambda s: 1 / (g * s + V)))

    second, first = moments()
    W = W * (((power * second).T @ H.T) / (first.T @ H.T).clamp_min(FLOOR)).sqrt()
    second, first = moments()
    H = H * ((W.T @ (power * second).T) / (W.T @ first.T).clamp_min(FLOOR)).sqrt()
    W, H = normalised(W[None], H[None])
    W, H = W[0], H[0]
    V = (W @ H).T.clamp_min(FLOOR)
    numerator = (power * expectation(draws, weights, lambda s: s / (g * s + V) ** 2)).sum(-1)
    denominator = expectation(draws, weights, lambda s: s / (g * s + V)).sum(-1)
    gain = gain * (numerator / denominator.clamp_min(FLOOR)).sqrt()
    return NoiseModel(W[None], H[None].clamp_min(FLOOR)), gain.clamp_min(FLOOR)


class MCEM:
    """Monte-Carlo EM over one or more chains (branches) with per-frame branch weights."""

    def __init__(self, problem: VAEProblem, settings: MCEMSettings, chains: list[LatentChain]) -> None:
        self.problem, self.settings, self.chains = problem, settings, chains
        self.power = problem.power.to(torch.float32).T.contiguous()  # (T, F)
        frames = len(self.power)
        self.noise = NoiseModel.initial(problem.power[None].float(), settings.nmf_rank, [problem.generator],
                                        scaled=settings.nmf_init == "scaled")
        self.gain = torch.ones(frames, device=self.power.device)
        self.weights = [torch.full((frames,), 1.0 / len(chains), device=self.power.device) for _ in chains]

    def noise_variance(self) -> Tensor:
        return self.noise.variance[0].T  # (T, F)

    def draw(self) -> list[ChainDraws]:
        settings, V = self.settings, self.noise_variance()
        return [chain.draw(self.power, V, self.gain[:, None], settings.mh_steps, settings.mh_kept)
                for chain in self.chains]

    def branch_weights(self, draws: list[ChainDraws]) -> list[Tensor]:
        """Each branch's weight per frame after an E-step (here: one branch, weight 1)."""
        return self.weights

    def cost(self, draws: list[ChainDraws]) -> float:
        """The mean negative expected log-likelihood of x per bin (up to a constant)."""
        V, g = self.noise_variance(), self.gain[:, None]
        return float(expectation(draws, self.weights, lambda s: torch.log(g * s + V) + self.power / (g * s + V)).mean())

    @torch.no_grad()
    def run(self, name: str) -> VAEOutput:
        settings, costs = self.settings, []
        progress = self.problem.progress(settings.em_iterations, name)
        for _ in range(settings.em_iterations):
            draws = self.draw()
            self.weights = self.branch_weights(draws)
            self.noise, self.gain = m_step(self.power, draws, self.weights, self.noise, self.gain)
            costs.append(self.cost(draws))
            progress.update(1)
            if settings.tolerance and len(costs) > 1 and abs(costs[-1] - costs[-2]) < settings.tolerance:
                break
        progress.close()
        draws = self.draw()
        self.weights = self.branch_weights(draws)
        V, g = self.noise_variance(), self.gain[:, None]
        wiener = expectation(draws, self.weights, lambda s: g * s / (g * s + V))
        return VAEOutput(wiener_gain=wiener.T.contiguous(), noise=self.noise,
                         network_calls=sum(chain.calls for chain in self.chains), costs=costs)


def start_chain(problem: VAEProblem, settings: MCEMSettings, lips: Tensor | None, mask: Tensor | None) -> LatentChain:
    """A chain under the branch the lips (`lips`, `mask`; None: the null condition) define, started
    at the encoder's mean for the noisy frames."""
    network = problem.network
    features = network.condition_features(lips, mask)
    start, _ = network.encode(problem.power.T.float(), features)
    return LatentChain(network, features, start, problem.generator, settings.proposal_std)


@register_method("vae-mcem")
class VAEMonteCarloEM(VAEMethod):
    """VAE speech prior + NMF noise by Monte-Carlo EM (Leglaive et al. 2018; with the lips, the
    audio-visual CVAE of Sadeghi et al. 2020)."""

    settings_class = MCEMSettings

    @torch.no_grad()
    def run(self, problem: VAEProblem) -> VAEOutput:
        chain = start_chain(problem, self.settings, problem.lips, problem.lips_mask)
        return MCEM(problem, self.settings, [chain]).run(self.name)
