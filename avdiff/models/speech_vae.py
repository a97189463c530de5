"""A frame-wise VAE of the clean speech power spectrogram, audio-only or conditioned on the lips.

The speech prior of VAE-based unsupervised enhancement (Leglaive, Girin, Horaud 2018; the
audio-visual conditional VAE of Sadeghi et al., IEEE/ACM TASLP 2020): every STFT frame s_t of
clean speech is complex Gaussian, s_ft | z_t ~ N_c(0, sigma^2_f(z_t, v_t)), with a latent z_t of
`latent_dim` and, in the audio-visual model, the lips' embedding v_t of that frame (the lip
encoder's output on the STFT grid). Its prior is N(0, I) in the audio-only model and a learned
N(mu(v_t), diag var(v_t)) in the audio-visual one. Frames whose lips are masked (no face, or
dropped in training) read one learned null embedding instead of v_t, as the score networks do,
so one audio-visual model is also its own audio-only model (what the switching VAE switches to).

Every call is frame-major: rows are frames, (N, F) powers, (N, D) lip embeddings, (N,) masks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avdiff.diffusers_parts import ConfigMixin, register_to_config
from avdiff.models.loading import LeanModelMixin

POWER_FLOOR = 1e-8  # added to |s|^2 before the encoder's log (silence would be -inf)
LOG_VARIANCE_RANGE = (-25.0, 15.0)  # the decoder's log-variance is kept inside it (finite IS terms)


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with tanh between them (the papers' activation), none after the last."""
    layers: list[nn.Module] = []
    for index, (size_in, size_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(size_in, size_out))
        if index < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class SpeechVAE(LeanModelMixin, ConfigMixin):
    """q(z | s, v), p(z | v) and p(s | z, v) of one STFT frame; `cond_dim` 0: audio-only."""

    @register_to_config
    def __init__(self, num_bins: int = 256, latent_dim: int = 32, hidden_dims: tuple[int, ...] = (128,),
                 cond_dim: int = 0, cond_hidden: int = 128) -> None:
        super().__init__()
        hidden = list(hidden_dims)
        self.audio_visual = cond_dim > 0
        extra = cond_hidden if self.audio_visual else 0
        self.encoder = _mlp([num_bins + extra, *hidden, 2 * latent_dim])
        self.decoder = _mlp([latent_dim + extra, *hidden[::-1], num_bins])
        if self.audio_visual:
            self.null_condition = nn.Parameter(torch.zeros(cond_dim))
            self.condition_net = nn.Sequential(nn.Linear(cond_dim, cond_hidden), nn.Tanh())
            self.prior_net = _mlp([cond_hidden, hidden[0], 2 * latent_dim])

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    def condition_features(self, cond: Tensor | None, mask: Tensor | None) -> Tensor | None:
        """(N, cond_hidden) features of the lips (the null embedding where `mask` is False or `cond`
        is None); None for an audio-only model. Computed once, reused by every call below."""
        if not self.audio_visual:
            return None
        null = self.null_condition.to(self.condition_net[0].weight.dtype)
        if cond is None:
            rows = 1 if mask is None else len(mask)
            cond, mask = null.expand(rows, -1), torch.zeros(rows, dtype=torch.bool, device=null.device)
        if mask is not None:
            cond = torch.where(mask.unsqueeze(-1), cond.to(null.dtype), null)
        return self.condition_net(cond)

    def _with(self, inputs: Tensor, features: Tensor | None) -> Tensor:
        if features is None:
            return inputs
        return torch.cat([inputs, features.expand(len(inputs), -1)], dim=-1)

    def encode(self, power: Tensor, features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z | s, v): mean and log-variance (N, latent) from the frames' power |s|^2 (N, F)."""
        out = self.encoder(self._with(torch.log(power + POWER_FLOOR), features))
        return out.chunk(2, dim=-1)

    def prior(self, features: Tensor | None, rows: int) -> tuple[Tensor, Tensor]:
        """p(z | v): mean and log-variance (rows, latent); N(0, I) for an audio-only model."""
        if features is None:
            zeros = torch.zeros(rows, self.latent_dim, device=self.decoder[0].weight.device)
            return zeros, zeros
        mean, log_var = self.prior_net(features).chunk(2, dim=-1)
        return mean.expand(rows, -1), log_var.expand(rows, -1)

    def decode(self, z: Tensor, features: Tensor | None = None) -> Tensor:
        """p(s | z, v): the speech variance sigma^2 (N, F) of each frame."""
        log_var = self.decoder(self._with(z, features)).clamp(*LOG_VARIANCE_RANGE)
        return log_var.exp()

    def forward(self, power: Tensor, features: Tensor | None, noise: Tensor) -> tuple[Tensor, Tensor]:
        """The per-frame negative ELBO's two terms for clean frames (N, F) with reparameterisation
        noise (N, latent): the Itakura-Saito reconstruction sum_f |s|^2/sigma^2 + log sigma^2 (the
        complex Gaussian's negative log-likelihood up to a constant) and KL(q || p), both (N,)."""
        mean, log_var = self.encode(power, features)
        z = mean + (0.5 * log_var).exp() * noise
        variance = self.decode(z, features)
        reconstruction = (power / variance + variance.log()).sum(-1)
        prior_mean, prior_log_var = self.prior(features, len(power))
        kl = 0.5 * (prior_log_var - log_var + (log_var.exp() + (mean - prior_mean).square()) / prior_log_var.exp()
                    - 1).sum(-1)
        return reconstruction, kl
