"""Diffusion formulations behind one interface: how noise levels, scalings and losses are defined.

Every formulation is written in EDM's scaled form (Karras et al. 2022, eq. 11):
`x_t = s(t) * (x0 + sigma(t) * n)`. Samplers and the loss work in the unscaled
coordinates `x_t / s(t)`, where the process is variance exploding with noise level
`sigma`, so one set of samplers serves every formulation; only the noise-level schedule,
the training distribution, the loss weight and the network preconditioning differ.

- `EDMFormulation` (default): s = 1, sigma = t, EDM preconditioning around `sigma_data`.
- `OUVEFormulation`: the SGMSE+/UDiffSE Ornstein-Uhlenbeck variance-exploding SDE with
  mean 0 (an unconditional prior), s(t) = exp(-theta t); the network predicts the noise from
  the unscaled-back input `x_t` and `log t`, as SGMSE+'s score model does.

Formulations are diffusers `ConfigMixin`s saved as `diffusion_config.json` in a model folder,
so `sigma_data` measured on the training data travels with the weights. They are registered in
`FORMULATIONS` (`avdiff.diffusion.formulation_registry`) under the name `diffusion.formulation`
gives, and each builds itself from the config's `diffusion` section (`from_avdiff_config`).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from avdiff.config.schema import DiffusionConfig
from avdiff.diffusers_parts import ConfigMixin, register_to_config
from avdiff.errors import ConfigError, InputError
from avdiff.diffusion.formulation_registry import FORMULATIONS

CONFIG_NAME = "diffusion_config.json"


class Preconditioning(NamedTuple):
    """`D(x; sigma) = c_skip * x + c_out * F(c_in * x, c_noise)`; each is (B,) float32."""

    c_skip: Tensor
    c_out: Tensor
    c_in: Tensor
    c_noise: Tensor


class DiffusionFormulation(ConfigMixin, ABC):
    """The interface samplers, losses and posterior samplers use. Noise levels are float32."""

    config_name = CONFIG_NAME

    @property
    def sigma_data(self) -> float:
        """Standard deviation of the (compressed spectrogram) data, measured from data."""
        return float(self.config.sigma_data)

    @property
    @abstractmethod
    def sigma_max(self) -> float:
        """Noise level where sampling starts (in the unscaled coordinates)."""

    @property
    @abstractmethod
    def sigma_min(self) -> float:
        """Smallest positive noise level visited."""

    @abstractmethod
    def sampling_sigmas(
        self, num_steps: int, device: torch.device | str = "cpu", sigma_start: float | None = None
    ) -> Tensor:
        """`num_steps` decreasing noise levels from `sigma_max` (or a lower `sigma_start`, as
        posterior samplers use when they start near the observation) to `sigma_min`, then 0."""

    @abstractmethod
    def sample_training_sigmas(
        self, batch_size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw training noise levels from this formulation's noise-level distribution."""

    @abstractmethod
    def loss_weight(self, sigma: Tensor) -> Tensor:
        """lambda(sigma) in the loss `lambda * |D(x0 + sigma n; sigma) - x0|^2`."""

    @abstractmethod
    def precondition(self, sigma: Tensor) -> Preconditioning:
        """c_skip, c_out, c_in, c_noise for the noise levels `sigma` (B,)."""

    @abstractmethod
    def scale(self, sigma: Tensor) -> Tensor:
        """s(t(sigma)): the factor from unscaled coordinates to the process's own ones."""

    @classmethod
    @abstractmethod
    def from_avdiff_config(cls, config: DiffusionConfig, sigma_data: float) -> "DiffusionFormulation":
        """Built from the `diffusion` section of a config, for data of std `sigma_data` (`build_formulation`)."""

    def with_sigma_data(self, sigma_data: float) -> "DiffusionFormulation":
        """A copy of this formulation with `sigma_data` replaced (e.g. after measuring it).

        Noise levels already resolved (EDM's derived from the old sigma_data) are kept: build
        the formulation from its config with the new sigma_data to derive them again."""
        if not math.isfinite(sigma_data) or sigma_data <= 0:
            raise ValueError(f"sigma_data must be a positive finite number, got {sigma_data}")
        kwargs = {k: v for k, v in self.config.items() if not k.startswith("_")}
        kwargs["sigma_data"] = float(sigma_data)
        return type(self)(**kwargs)


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> Tensor:
    """EDM's schedule: sigma_max^(1/rho) to sigma_min^(1/rho) linearly, raised to rho; then 0."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if sigma_max <= sigma_min:
        raise ValueError(f"the first noise level {sigma_max} must exceed sigma_min {sigma_min}")
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64) if num_steps > 1 else torch.zeros(1, dtype=torch.float64)
    max_inv, min_inv = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(torch.float32)


# Noise levels as ratios to sigma_data, used where a config leaves them unset (null). EDM's
# image setting (sigma_data 0.5: sigma_max 80 = 160 sd, sigma_min 0.002 = 0.004 sd, P_mean -1.2
# = ln(0.6 sd), P_std 1.2) moved to speech's sigma_data trained the levels that make detail
# but starved the high ones where the lips decide what is said (lip-conditioned tones lost
# their pitch: correlation 0.95 -> 0.29). A wider distribution centred higher keeps both:
# BENCHMARKS.md, "Noise levels scaled to sigma_data". P_std (1.8) is a plain config value.
EDM_SIGMA_MAX_RATIO = 160.0
EDM_SIGMA_MIN_RATIO = 0.004
EDM_P_MEAN_RATIO = 1.5  # P_mean = ln(1.5 sigma_data)


def edm_noise_levels(sigma_data: float) -> dict[str, float]:
    """sigma_min, sigma_max and p_mean for data of std `sigma_data` (the ratios above)."""
    return {
        "sigma_min": EDM_SIGMA_MIN_RATIO * sigma_data,
        "sigma_max": EDM_SIGMA_MAX_RATIO * sigma_data,
        "p_mean": math.log(EDM_P_MEAN_RATIO * sigma_data),
    }


class EDMFormulation(DiffusionFormulation):
    """EDM: x = x0 + sigma n, ln sigma ~ N(p_mean, p_std^2), weight (s^2+sd^2)/(s sd)^2.

    sigma_min, sigma_max and p_mean left None follow `sigma_data` (`edm_noise_levels`); the
    values used are what the saved `diffusion_config.json` holds.
    """

    @register_to_config
    def __init__(
        self,
        sigma_data: float = 0.5,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        rho: float = 7.0,
        p_mean: float | None = None,
        p_std: float = 1.8,
    ) -> None:
        super().__init__()
        derived = edm_noise_levels(sigma_data)
        given = {"sigma_min": sigma_min, "sigma_max": sigma_max, "p_mean": p_mean}
        resolved = {name: derived[name] if value is None else float(value) for name, value in given.items()}
        self.register_to_config(**resolved)
        if not 0 < resolved["sigma_min"] < resolved["sigma_max"]:
            raise ValueError(f"need 0 < sigma_min ({resolved['sigma_min']}) < sigma_max ({resolved['sigma_max']})")

    @property
    def sigma_max(self) -> float:
        return float(self.config.sigma_max)

    @property
    def sigma_min(self) -> float:
        return float(self.config.sigma_min)

    def sampling_sigmas(
        self, num_steps: int, device: torch.device | str = "cpu", sigma_start: float | None = None
    ) -> Tensor:
        start = self.sigma_max if sigma_start is None else min(sigma_start, self.sigma_max)
        return karras_sigmas(num_steps, self.sigma_min, start, self.config.rho).to(device)

    def sample_training_sigmas(
        self, batch_size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Tensor:
        gen_device = generator.device if generator is not None else device
        normal = torch.randn(batch_size, generator=generator, device=gen_device, dtype=torch.float32)
        return (normal * self.config.p_std + self.config.p_mean).exp().to(device)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        sd = self.sigma_data
        return (sigma**2 + sd**2) / (sigma * sd) ** 2

    def precondition(self, sigma: Tensor) -> Preconditioning:
        sigma = sigma.to(torch.float32)
        sd = self.sigma_data
        total = (sigma**2 + sd**2).sqrt()
        return Preconditioning(
            c_skip=sd**2 / total**2,
            c_out=sigma * sd / total,
            c_in=1.0 / total,
            c_noise=sigma.log() / 4,
        )

    def scale(self, sigma: Tensor) -> Tensor:
        return torch.ones_like(sigma, dtype=torch.float32)

    @classmethod
    def from_avdiff_config(cls, config: DiffusionConfig, sigma_data: float) -> "EDMFormulation":
        c = config.edm
        return cls(sigma_data, c.sigma_min, c.sigma_max, c.rho, c.p_mean, c.p_std)


class OUVEFormulation(DiffusionFormulation):
    """SGMSE+'s OUVE SDE `dx = -theta x dt + g(t) dw` (mean 0), in EDM's scaled form.

    As in SGMSE+ and UDiffSE, w is a complex Wiener process: complex standard normal noise,
    variance 1/2 per real and imaginary part, so the process's complex std
    std(t) = s(t) * sqrt(2) * sigma(t) is SGMSE+'s `_std(t)` and sigma_min / sigma_max mean
    what they mean there. In the real view the samplers use, the noise level per component is
    sigma(t) = sigma_min * sqrt((exp(2 (theta + L) t) - 1) L / (theta + L) / 2),
    L = ln(sigma_max / sigma_min); s(t) = exp(-theta t).
    """

    @register_to_config
    def __init__(
        self,
        sigma_data: float = 0.5,
        theta: float = 1.5,
        sigma_min: float = 0.05,
        sigma_max: float = 0.5,
        t_eps: float = 0.03,
        t_max: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min ({sigma_min}) < sigma_max ({sigma_max})")
        if not 0 < t_eps < t_max:
            raise ValueError(f"need 0 < t_eps ({t_eps}) < t_max ({t_max})")

    @property
    def _log_ratio(self) -> float:
        return math.log(self.config.sigma_max / self.config.sigma_min)

    def sigma_of_time(self, t: Tensor) -> Tensor:
        """Unscaled noise level per real component: sigma(t) = std(t) / (sqrt(2) s(t))."""
        theta, log_ratio = self.config.theta, self._log_ratio
        t = t.to(torch.float64)
        inner = torch.expm1(2 * (theta + log_ratio) * t) * log_ratio / (theta + log_ratio) / 2
        return (self.config.sigma_min * inner.sqrt()).to(torch.float32)

    def diffusion_coefficient(self, t: Tensor) -> Tensor:
        """SGMSE+'s g(t) = sigma_min (sigma_max / sigma_min)^t sqrt(2 L) (complex noise)."""
        t = t.to(torch.float64)
        g = self.config.sigma_min * torch.exp(self._log_ratio * t) * math.sqrt(2 * self._log_ratio)
        return g.to(torch.float32)

    def time_of_sigma(self, sigma: Tensor) -> Tensor:
        """The inverse of `sigma_of_time` (closed form)."""
        theta, log_ratio = self.config.theta, self._log_ratio
        sigma = sigma.to(torch.float64)
        ratio = 2 * sigma**2 * (theta + log_ratio) / (self.config.sigma_min**2 * log_ratio)
        return (torch.log1p(ratio) / (2 * (theta + log_ratio))).to(torch.float32)

    @property
    def sigma_max(self) -> float:
        return float(self.sigma_of_time(torch.tensor(self.config.t_max)))

    @property
    def sigma_min(self) -> float:
        return float(self.sigma_of_time(torch.tensor(self.config.t_eps)))

    def sampling_sigmas(
        self, num_steps: int, device: torch.device | str = "cpu", sigma_start: float | None = None
    ) -> Tensor:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        t_start = self.config.t_max
        if sigma_start is not None:
            t_start = min(t_start, float(self.time_of_sigma(torch.tensor(sigma_start))))
        times = torch.linspace(t_start, self.config.t_eps, num_steps, dtype=torch.float64)
        sigmas = self.sigma_of_time(times)
        return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device)

    def sample_training_sigmas(
        self, batch_size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Tensor:
        gen_device = generator.device if generator is not None else device
        uniform = torch.rand(batch_size, generator=generator, device=gen_device, dtype=torch.float32)
        times = self.config.t_eps + uniform * (self.config.t_max - self.config.t_eps)
        return self.sigma_of_time(times).to(device)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        # SGMSE+'s |sigma_t * score + n|^2 equals |D - x0|^2 / sigma^2 in unscaled coordinates.
        return 1.0 / sigma**2

    def precondition(self, sigma: Tensor) -> Preconditioning:
        sigma = sigma.to(torch.float32)
        times = self.time_of_sigma(sigma)
        return Preconditioning(
            c_skip=torch.ones_like(sigma),
            c_out=-sigma,
            c_in=self.scale(sigma),
            c_noise=times.clamp_min(1e-12).log(),
        )

    def scale(self, sigma: Tensor) -> Tensor:
        return torch.exp(-self.config.theta * self.time_of_sigma(sigma))

    @classmethod
    def from_avdiff_config(cls, config: DiffusionConfig, sigma_data: float) -> "OUVEFormulation":
        c = config.ouve
        return cls(sigma_data, c.theta, c.sigma_min, c.sigma_max, c.t_eps, c.t_max)


def build_formulation(config: DiffusionConfig, sigma_data: float | None = None) -> DiffusionFormulation:
    """The formulation a `DiffusionConfig` names; `sigma_data` overrides the config's value."""
    sigma_data = sigma_data if sigma_data is not None else config.sigma_data
    if sigma_data is None:
        raise ConfigError(
            "diffusion.sigma_data is null: measure it from the training data "
            "(avdiff.diffusion.measure_sigma_data) or set it, e.g. --set diffusion.sigma_data=0.2"
        )
    return FORMULATIONS.get(config.formulation).from_avdiff_config(config, sigma_data)


def load_formulation(folder: str | Path) -> DiffusionFormulation:
    """Load the formulation saved by `formulation.save_config(folder)`."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise InputError(f"{folder}: no {CONFIG_NAME}; is this a saved diffusion folder?")
    class_name = json.loads(path.read_text()).get("_class_name")
    found = FORMULATIONS.find(lambda cls: cls.__name__ == class_name)
    if found is None:
        known = sorted(cls.__name__ for cls in FORMULATIONS.values())
        raise InputError(f"{path}: unknown formulation class {class_name!r}; known: {known}")
    cls = found[1]
    return cls.from_config(cls.load_config(folder))


@torch.no_grad()
def spectrogram_energy(spec: Tensor, frame_mask: Tensor | None = None) -> Tensor:
    """float64 [sum of squares, number of values] of compressed spectrograms (B, 2, F, T): the parts
    of sigma_data that add up over batches and processes; `frame_mask` (B, T) keeps only valid frames."""
    spec = spec.detach().to(torch.float64)
    if frame_mask is not None:
        spec = spec[frame_mask.to(spec.device)[:, None, None, :].expand_as(spec)]
    count = torch.tensor(float(spec.numel()), dtype=torch.float64, device=spec.device)
    return torch.stack([spec.square().sum(), count])


def sigma_data_from_energy(energy: Tensor) -> float:
    """sqrt(sum of squares / count) of summed `spectrogram_energy` values, or a clear error for silence."""
    total, count = float(energy[0]), float(energy[1])
    if count == 0 or total == 0.0:
        raise InputError("cannot measure sigma_data: the spectrograms are empty or all zero (silent audio?); "
                         "check the data or set it, e.g. --set diffusion.sigma_data=0.2")
    return math.sqrt(total / count)


def measure_sigma_data(spectrograms: Iterable[Tensor]) -> float:
    """RMS of all values of compressed spectrograms (real view): the data scale EDM centres on.

    The real and imaginary parts of an STFT have zero mean, so their RMS is their std; the
    estimate is accumulated in float64 over any number of batches. The trainer measures it the
    same way (`spectrogram_energy`, summed over its processes) on the training crops.
    """
    energy = torch.zeros(2, dtype=torch.float64)
    for spec in spectrograms:
        energy += spectrogram_energy(spec).cpu()
    return sigma_data_from_energy(energy)
