"""Exponential moving average of a module's weights, used for validation and export.

The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates (as in diffusers'
EMAModel), so a short run's EMA is not dominated by the random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class ExponentialMovingAverage:
    """A float32 shadow copy of `module`; `update(module)` after every optimizer step."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(module).float().eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """shadow <- decay * shadow + (1 - decay) * weights; buffers are copied."""
        decay = self.current_decay()
        shadow = dict(self.module.named_parameters())
        for name, param in module.named_parameters():
            shadow[name].lerp_(param.detach().float(), 1.0 - decay)
        shadow_buffers = dict(self.module.named_buffers())
        for name, buffer in module.named_buffers():
            shadow_buffers[name].copy_(buffer)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors only (safetensors-compatible): the shadow weights and the update count."""
        state = {f"shadow.{k}": v.detach().clone().contiguous() for k, v in self.module.state_dict().items()}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        shadow = {k.removeprefix("shadow."): v for k, v in state.items() if k.startswith("shadow.")}
        self.module.load_state_dict(shadow, strict=True)
        self.num_updates = int(state["num_updates"])
