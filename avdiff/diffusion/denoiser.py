"""The preconditioned denoiser D(x; sigma, cond) and classifier-free guidance over it.

`Denoiser` joins a network F with a formulation's preconditioning:
`D(x; sigma) = c_skip x + c_out F(c_in x, c_noise, cond)`. The scalings and the skip
connection are computed in float32; only F may run in bf16/fp16 under autocast.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from avdiff.diffusion.formulation import DiffusionFormulation

# What samplers call: a denoiser with its condition already bound, (x, sigma (B,)) -> D.
DenoiserFn = Callable[[Tensor, Tensor], Tensor]


def _expand(values: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, ...) broadcastable against `like`."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


class Denoiser(nn.Module):
    """D(x; sigma, cond, cond_mask) for a score network that takes (c_in x, c_noise, cond, cond_mask)."""

    def __init__(self, network: nn.Module, formulation: DiffusionFormulation) -> None:
        super().__init__()
        self.network = network
        self.formulation = formulation

    def forward(
        self,
        x: Tensor,
        sigma: Tensor | float,
        cond: Tensor | None = None,
        cond_mask: Tensor | None = None,
    ) -> Tensor:
        """Denoised estimate of x0 from x = x0 + sigma n; float32, same shape as `x`."""
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.dim() == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = self.formulation.precondition(sigma)
        out = self.network(_expand(c_in, x) * x, c_noise, cond=cond, cond_mask=cond_mask)
        return _expand(c_skip, x) * x + _expand(c_out, x) * out.to(torch.float32)


def guided_denoiser(
    denoiser: Callable[..., Tensor],
    cond: Tensor | None,
    cond_mask: Tensor | None = None,
    guidance_scale: float = 1.0,
    min_sigma: float = 0.0,
) -> DenoiserFn:
    """Bind a condition and classifier-free guidance: D_null + w (D_cond - D_null).

    w = 1 is plain conditional sampling (one network call per step). Otherwise the
    conditional and null branches run as one doubled batch, the null branch with every
    frame masked so the learned null embedding replaces the condition; at noise levels below
    `min_sigma` only the conditional branch runs (guidance in a limited interval: Kynkäänniemi
    et al., "Applying guidance in a limited interval improves sample and distribution quality", 2024).
    """
    if cond is None and guidance_scale != 1.0:
        raise ValueError("classifier-free guidance (guidance_scale != 1) needs a condition")
    if cond is None or guidance_scale == 1.0:

        def conditional(x: Tensor, sigma: Tensor) -> Tensor:
            return denoiser(x, sigma, cond=cond, cond_mask=cond_mask)

        return conditional

    batch, frames = cond.shape[0], cond.shape[-1]
    valid = cond_mask if cond_mask is not None else torch.ones(batch, frames, dtype=torch.bool, device=cond.device)
    both_cond = torch.cat([cond, cond])
    both_mask = torch.cat([valid, torch.zeros_like(valid)])

    def guided(x: Tensor, sigma: Tensor) -> Tensor:
        if float(sigma.max()) < min_sigma:
            return denoiser(x, sigma, cond=cond, cond_mask=valid)
        both = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=both_cond, cond_mask=both_mask)
        d_cond, d_null = both.chunk(2)
        return d_null + guidance_scale * (d_cond - d_null)

    return guided
