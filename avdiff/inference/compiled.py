"""torch.compile of the score network, with the modes that suit each device.

On a GPU a one-clip job is bound by launching kernels, not by arithmetic (BENCHMARKS.md, "GPU
suite": the 1.4 M-parameter network runs 57 calls/s eager at batch 1), so the mode that counts
there replays the whole network as one CUDA graph (`reduce-overhead`). Its outputs live in the
graph's own memory, which the next replay overwrites: `CudaGraphNetwork` starts a new step of
torch's graph tree at every call and copies the output out, so a sampler may keep a result (the
conditional branch while the null one runs) as long as it likes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def default_compile_mode(device_type: str) -> str:
    """CUDA graphs on GPUs (what a batch-1 job lacks); torch's default mode on CPUs, where
    autotuning costs minutes for little and CUDA graphs do not exist."""
    return "reduce-overhead" if device_type == "cuda" else "default"


class CudaGraphNetwork(nn.Module):
    """A network compiled with CUDA graphs whose every call is a new graph step and whose output is
    a tensor of its own (see the module docstring)."""

    def __init__(self, compiled: nn.Module) -> None:
        super().__init__()
        self.compiled = compiled

    def forward(self, *args, **kwargs) -> Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(*args, **kwargs).clone()


def compile_network(network: nn.Module, device_type: str, mode: str | None = None) -> nn.Module:
    """`network` under torch.compile in `mode` (default: `default_compile_mode`), static shapes
    (one graph per input size: a job's chunks share theirs)."""
    mode = mode or default_compile_mode(device_type)
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    compiled = torch.compile(network, mode=mode, dynamic=False)
    return CudaGraphNetwork(compiled) if mode in CUDA_GRAPH_MODES and device_type == "cuda" else compiled
