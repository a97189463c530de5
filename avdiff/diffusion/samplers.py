"""Samplers: small functions over a denoiser with one signature, k-diffusion style, and their registry.

Every sampler is `sampler(denoiser, x, sigmas, *, generators, callback=None, progress=False,
**options) -> SamplerOutput`: `denoiser(x, sigma) -> x0_hat` (condition and guidance already
bound, see `guided_denoiser`), the starting sample `x` at `sigmas[0]`, the decreasing noise
levels `sigmas` ending in 0 (from `DiffusionFormulation.sampling_sigmas`), one generator per
item (so the same seed gives the same sample at any batch size), and a `callback(Step)` run
after every step that may return a replacement sample: posterior sampling injects its
likelihood step through it (`avdiff.posterior.passes`). The keyword options with scalar
defaults are the sampler's settings (`SamplerConfig.options`, `avdiff generate`).

They work in the unscaled coordinates of the formulation (variance exploding, x = x0 + sigma n),
where the reverse SDE is `dx = -2 sigma score dsigma + sqrt(2 sigma |dsigma|) dW` and the
probability-flow ODE is `dx/dsigma = (x - D(x; sigma)) / sigma`, with score = (D - x) / sigma^2.
The step to sigma = 0 is the denoised estimate itself (Tweedie), as SGMSE+ returns its last x_mean.

Adding a sampler is one function with the signature above and one `@register_sampler` line.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from avdiff.config.schema import SamplerConfig
from avdiff.diffusion.noise import randn_like_per_item, randn_per_item
from avdiff.registry import Registry

if TYPE_CHECKING:  # annotations only: the registry imports without the formulations' diffusers classes
    from avdiff.diffusion.denoiser import DenoiserFn
    from avdiff.diffusion.formulation import DiffusionFormulation

Generators = Sequence[torch.Generator]


@dataclass
class SamplerOutput:
    """The final sample (B, ...) and how many times the denoiser (network) was called."""

    sample: Tensor
    network_calls: int


@dataclass(frozen=True)
class Step:
    """One finished step from `sigma` to `sigma_next`: the new sample `x` and the `denoised`
    estimate D(x; sigma) the step used (k-diffusion's callback dictionary, typed)."""

    index: int
    sigma: float
    sigma_next: float
    x: Tensor
    denoised: Tensor


StepCallback = Callable[[Step], "Tensor | None"]
SamplerFn = Callable[..., SamplerOutput]
# A predictor moves a sample from `step.sigma` to `step.sigma_next` given D(x; sigma).
Predictor = Callable[[Step, Generators], Tensor]
# An extra score term (e.g. a likelihood's) the Langevin corrector adds to the prior's: (x, sigma) -> score.
ScoreTerm = Callable[[Tensor, float], Tensor]


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its function, its network calls for a number of levels and
    options, and its options with their defaults (read from the function's signature)."""

    function: SamplerFn
    network_calls: Callable[[int, Mapping[str, Any]], int]
    options: Mapping[str, Any]


SAMPLERS: Registry[SamplerSpec] = Registry(
    "sampler", "a sampler of your own: avdiff.diffusion.register_sampler in a module imported first, "
    "or an avdiff.plugins entry point")
_NOT_OPTIONS = ("generators", "callback", "progress")


def register_sampler(name: str, network_calls: Callable[[int, Mapping[str, Any]], int], *, replace: bool = False
                     ) -> Callable[[SamplerFn], SamplerFn]:
    """Decorator adding a sampler to `SAMPLERS` (and so to the CLI, the schema's checks and the tests);
    a name already taken is an error unless `replace`."""

    def add(function: SamplerFn) -> SamplerFn:
        parameters = inspect.signature(function).parameters.values()
        options = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in _NOT_OPTIONS
                   and isinstance(p.default, (bool, int, float))}
        SAMPLERS.register(name, SamplerSpec(function, network_calls, options), replace=replace)
        return function

    return add


def sampler_spec(name: str) -> SamplerSpec:
    """The registered sampler `name`, or a RegistryError (a ValueError) listing the registered ones."""
    return SAMPLERS.get(name)


def sampler_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The sampler's defaults updated by `options`; unknown or mistyped options are errors."""
    defaults = sampler_spec(name).options
    resolved = dict(defaults)
    for key, value in options.items():
        if key not in defaults:
            allowed = ", ".join(sorted(defaults)) or "none"
            raise ValueError(f"sampler {name!r} has no option {key!r} (its options: {allowed})")
        kind = type(defaults[key])
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float)) or \
                (kind is int and float(value) != int(value)) or not math.isfinite(float(value)):
            raise ValueError(f"sampler option {key!r} must be a finite {kind.__name__}, got {value!r}")
        resolved[key] = kind(value)
    return resolved


def run_sampler(config: SamplerConfig, denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, generators: Generators,
                progress: bool = False, callback: StepCallback | None = None) -> SamplerOutput:
    """Run the sampler a `SamplerConfig` names, with that config's options."""
    options = sampler_options(config.name, config.options)
    return sampler_spec(config.name).function(denoiser, x, sigmas, generators=generators, callback=callback,
                                              progress=progress, **options)


def sample_from_noise(config: SamplerConfig, denoiser: DenoiserFn, formulation: DiffusionFormulation,
                      shape: Sequence[int], generators: Generators, device: torch.device | str = "cpu",
                      progress: bool = False) -> SamplerOutput:
    """A sample of `shape` from pure noise at the formulation's largest level, on `config.steps` levels."""
    sigmas = formulation.sampling_sigmas(config.steps, device=device)
    x = initial_noise(shape, sigmas[0].item(), generators, device)
    return run_sampler(config, denoiser, x, sigmas, generators, progress=progress)


def sample_from_start(config: SamplerConfig, denoiser: DenoiserFn, formulation: DiffusionFormulation,
                      start: Tensor, sigma_start: float, generators: Generators, device: torch.device | str = "cpu",
                      progress: bool = False) -> SamplerOutput:
    """A sample that starts from `start` noised to `sigma_start` (capped at the largest level) and
    runs `config.steps` levels down from there: SDEdit (Meng et al. 2022). Video-to-speech starts
    from a rendition of the lips' envelope this way (`avdiff.audio.rendition`)."""
    sigmas = formulation.sampling_sigmas(config.steps, device=device, sigma_start=sigma_start)
    x = start.to(device) + initial_noise(start.shape, sigmas[0].item(), generators, device)
    return run_sampler(config, denoiser, x, sigmas, generators, progress=progress)


def network_calls_per_run(config: SamplerConfig) -> int:
    """Network calls a sampler run with `config` makes (before guidance doubles the batch)."""
    return sampler_spec(config.name).network_calls(config.steps, sampler_options(config.name, config.options))


# ----------------------------------------------------------------------------- shared parts


class CallCounter:
    """Wraps a denoiser, counting calls and handing it a (B,) sigma tensor."""

    def __init__(self, denoiser: DenoiserFn) -> None:
        self.denoiser = denoiser
        self.calls = 0

    def __call__(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        self.calls += 1
        sigma_batch = torch.full((x.shape[0],), float(sigma), dtype=torch.float32, device=x.device)
        return self.denoiser(x, sigma_batch)


def levels(sigmas: Tensor, progress: bool, name: str) -> Iterator[tuple[int, float, float]]:
    """(index, sigma, sigma_next) of every step, after checking the schedule; with a progress bar."""
    if sigmas.dim() != 1 or len(sigmas) < 2 or float(sigmas[-1]) != 0.0 or bool((sigmas.diff() >= 0).any()):
        raise ValueError(f"sigmas must be a 1-D strictly decreasing sequence ending in 0, got {sigmas.tolist()}")
    sigma_list = sigmas.tolist()
    for i in tqdm(range(len(sigma_list) - 1), desc=name, disable=not progress, leave=False):
        yield i, sigma_list[i], sigma_list[i + 1]


def after_step(callback: StepCallback | None, step: Step) -> Tensor:
    """The sample after `step`: the callback's replacement if it returns one."""
    if callback is None:
        return step.x
    replaced = callback(step)
    return step.x if replaced is None else replaced


def initial_noise(shape: Sequence[int], sigma_max: float, generators: Generators,
                  device: torch.device | str = "cpu") -> Tensor:
    """The starting sample sigma_max * n of the unscaled (variance-exploding) process."""
    return sigma_max * randn_per_item(shape, generators, device=device)


def reverse_diffusion_step(step: Step, generators: Generators) -> Tensor:
    """SGMSE+'s reverse-diffusion predictor: with d = sigma^2 - sigma_next^2,
    x += d * score + sqrt(d) n; the last step (to 0) is the denoised estimate."""
    if step.sigma_next == 0:
        return step.denoised
    d = step.sigma**2 - step.sigma_next**2
    return step.x + d * (step.denoised - step.x) / step.sigma**2 + math.sqrt(d) * randn_like_per_item(step.x, generators)


def langevin_corrector(model: CallCounter, x: Tensor, sigma: float, generators: Generators, steps: int,
                       step_size: float, extra_score: ScoreTerm | None = None) -> Tensor:
    """Annealed Langevin steps x += step_size * score + sqrt(2 step_size) n at level sigma."""
    for _ in range(steps):
        score = (model(x, sigma) - x) / sigma**2
        if extra_score is not None:
            score = score + extra_score(x, sigma)
        x = x + step_size * score + math.sqrt(2 * step_size) * randn_like_per_item(x, generators)
    return x


# ----------------------------------------------------------------------------- the samplers


@register_sampler("euler_maruyama", lambda steps, options: steps)
@torch.no_grad()
def sample_euler_maruyama(denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, *, generators: Generators,
                          callback: StepCallback | None = None, progress: bool = False) -> SamplerOutput:
    """Euler-Maruyama on the reverse SDE; one network call per noise level."""
    model = CallCounter(denoiser)
    for i, sigma, sigma_next in levels(sigmas, progress, "euler-maruyama"):
        denoised = model(x, sigma)
        if sigma_next == 0:
            x_next = denoised
        else:
            step = sigma - sigma_next
            noise = math.sqrt(2 * sigma * step) * randn_like_per_item(x, generators)
            x_next = x + 2 * step * (denoised - x) / sigma + noise
        x = after_step(callback, Step(i, sigma, sigma_next, x_next, denoised))
    return SamplerOutput(x, model.calls)


@register_sampler("predictor_corrector", lambda steps, options: (1 + options["corrector_steps"]) * steps)
@torch.no_grad()
def sample_predictor_corrector(
    denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, *, generators: Generators,
    callback: StepCallback | None = None, progress: bool = False, snr: float = 0.5, corrector_steps: int = 1,
    corrector_step_factor: float = 2.0, predictor: Predictor | None = None, extra_score: ScoreTerm | None = None,
) -> SamplerOutput:
    """SGMSE+'s predictor-corrector: annealed Langevin corrector, then the reverse-diffusion predictor.

    Corrector (per level, `corrector_steps` times): step = factor (snr sigma)^2 (SGMSE+: factor 2),
    `x += step * score + sqrt(2 step) n`. 30 levels and 1 corrector step = 60 network calls.
    Posterior sampling passes its own `predictor`, an `extra_score` (the likelihood's) for the
    corrector, and its likelihood step as the `callback`.
    """
    model = CallCounter(denoiser)
    predict = predictor or reverse_diffusion_step
    for i, sigma, sigma_next in levels(sigmas, progress, "predictor-corrector"):
        step_size = corrector_step_factor * (snr * sigma) ** 2
        x = langevin_corrector(model, x, sigma, generators, corrector_steps, step_size, extra_score)
        denoised = model(x, sigma)
        x_next = predict(Step(i, sigma, sigma_next, x, denoised), generators)
        x = after_step(callback, Step(i, sigma, sigma_next, x_next, denoised))
    return SamplerOutput(x, model.calls)


@register_sampler("edm_stochastic", lambda steps, options: 2 * steps - 1)
@torch.no_grad()
def sample_edm_stochastic(
    denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, *, generators: Generators,
    callback: StepCallback | None = None, progress: bool = False, churn: float = 0.0,
    churn_sigma_min: float = 0.0, churn_sigma_max: float = 1e9, noise_inflation: float = 1.0,
) -> SamplerOutput:
    """EDM Algorithm 2: Heun steps on the probability-flow ODE with optional noise churn.

    At levels in [churn_sigma_min, churn_sigma_max] the noise is raised from sigma to
    sigma (1 + gamma), gamma = min(churn / N, sqrt(2) - 1), before the Heun step.
    With churn = 0 this is EDM Algorithm 1 (deterministic Heun): 2N - 1 network calls.
    """
    model = CallCounter(denoiser)
    num_steps = len(sigmas) - 1
    for i, sigma, sigma_next in levels(sigmas, progress, "edm" if churn > 0 else "heun"):
        gamma = min(churn / num_steps, math.sqrt(2) - 1) if churn_sigma_min <= sigma <= churn_sigma_max else 0.0
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * noise_inflation * randn_like_per_item(x, generators)
        denoised = model(x, sigma_hat)
        slope = (x - denoised) / sigma_hat
        x_next = x + (sigma_next - sigma_hat) * slope
        if sigma_next != 0:
            slope_next = (x_next - model(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma_hat) * (slope + slope_next) / 2
        x = after_step(callback, Step(i, sigma_hat, sigma_next, x_next, denoised))
    return SamplerOutput(x, model.calls)


@register_sampler("heun", lambda steps, options: 2 * steps - 1)
def sample_heun(denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, *, generators: Generators,
                callback: StepCallback | None = None, progress: bool = False) -> SamplerOutput:
    """EDM Algorithm 1: deterministic Heun (2nd order) on the probability-flow ODE."""
    return sample_edm_stochastic(denoiser, x, sigmas, generators=generators, callback=callback, progress=progress)


def dpmpp_2m_step(step: Step, previous: tuple[Tensor, float] | None, eta: float, generators: Generators) -> Tensor:
    """One DPM-Solver++(2M) step from `step.sigma` to `step.sigma_next` in log-sigma time.

    With h = ln(sigma / sigma_next) and the previous step's (denoised, h_last), r = h_last / h:
    x' = (sigma_next / sigma) e^(-eta h) x + (1 - e^(-(1 + eta) h)) (D + (D - D_last) / (2 r))
         + sigma_next sqrt(1 - e^(-2 eta h)) n.
    eta = 0 is the multistep ODE solver of Lu et al. (2022, eq. for 2M); eta = 1 its SDE
    counterpart (the reverse SDE's exact linear part); the first step has no D_last (first order).
    """
    x, denoised, sigma, sigma_next = step.x, step.denoised, step.sigma, step.sigma_next
    if sigma_next == 0:
        return denoised
    h = math.log(sigma / sigma_next)
    eta_h = eta * h
    estimate = denoised
    if previous is not None:
        old_denoised, h_last = previous
        estimate = denoised + (h / h_last) / 2 * (denoised - old_denoised)
    x_next = (sigma_next / sigma) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * estimate
    if eta_h > 0:
        x_next = x_next + sigma_next * math.sqrt(-math.expm1(-2 * eta_h)) * randn_like_per_item(x, generators)
    return x_next


@register_sampler("dpmpp_2m", lambda steps, options: steps)
@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: DenoiserFn, x: Tensor, sigmas: Tensor, *, generators: Generators,
    callback: StepCallback | None = None, progress: bool = False, eta: float = 0.0,
    eta_sigma_min: float = 0.0, eta_sigma_max: float = 1e9,
) -> SamplerOutput:
    """DPM-Solver++(2M): second-order multistep, one network call per level (few-step sampling).

    The step is stochastic (SDE, strength `eta`) at levels in [eta_sigma_min, eta_sigma_max]
    and deterministic (ODE) elsewhere, so noise can be injected where it helps (e.g. only at
    high levels) and the last steps stay deterministic. The first step is first order (no
    history yet). A callback may replace x; the history D_last stays the network's estimate.
    """
    model = CallCounter(denoiser)
    previous: tuple[Tensor, float] | None = None
    for i, sigma, sigma_next in levels(sigmas, progress, "dpm++2m"):
        denoised = model(x, sigma)
        step_eta = eta if eta_sigma_min <= sigma <= eta_sigma_max else 0.0
        step = Step(i, sigma, sigma_next, x, denoised)
        x_next = dpmpp_2m_step(step, previous, step_eta, generators)
        if sigma_next > 0:
            previous = (denoised, math.log(sigma / sigma_next))
        x = after_step(callback, Step(i, sigma, sigma_next, x_next, denoised))
    return SamplerOutput(x, model.calls)
