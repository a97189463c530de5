"""Which engine runs the score network: torch (the reference) or ONNX Runtime (made for CPUs).

`choose_backend` resolves `auto`: ONNX Runtime on CPUs without native bfloat16, where it ran
the shipped networks 1.4-1.6x faster than torch in float32 (BENCHMARKS.md, "Real time on every
CPU"), and torch everywhere else (GPUs; CPUs with native bfloat16, where torch's bf16 autocast
is the measured choice). Asking for ONNX Runtime where it is not installed falls back to torch
with one line saying so. `OnnxScoreNetwork` stands in for the score network inside the
`Denoiser`: the shape-dependent preparation stays in torch, the body runs in the session, and a
call that needs a gradient (`dps`) runs the torch network, so every method works on either.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from avdiff.inference.choices import BACKEND_CHOICES, ONNXRUNTIME, TORCH

INSTALL_HINT = "pip install 'avdiff[cpu]'"


@dataclass(frozen=True)
class BackendChoice:
    """The engine that runs, and a line for the user when it is not the one asked for (else None)."""

    name: str
    note: str | None = None


def default_dtype(device: torch.device) -> torch.dtype:
    """The score network's dtype: bfloat16 on GPUs and on CPUs with native bfloat16 (half the
    time at the same quality there: BENCHMARKS.md, "Quality against network calls"), else float32."""
    from avdiff.cpu import cpu_has_native_bf16

    return torch.bfloat16 if device.type == "cuda" or cpu_has_native_bf16() else torch.float32


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and the ONNX exporter's package can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def choose_backend(requested: str, device: torch.device, dtype: torch.dtype) -> BackendChoice:
    """The engine for `requested` (one of BACKEND_CHOICES) on `device` with the score network in `dtype`."""
    if requested not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {requested!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if requested == TORCH:
        return BackendChoice(TORCH)
    if device.type != "cpu" or dtype != torch.float32:
        if requested == ONNXRUNTIME:
            where = device.type if device.type != "cpu" else f"{str(dtype).removeprefix('torch.')} on the CPU"
            return BackendChoice(TORCH, f"backend onnxruntime runs float32 on the CPU only: the score network runs "
                                        f"in torch ({where})")
        return BackendChoice(TORCH)
    if not onnxruntime_available():
        return BackendChoice(TORCH, f"onnxruntime is not installed: the score network runs in torch "
                                    f"({INSTALL_HINT} for the faster CPU engine)")
    return BackendChoice(ONNXRUNTIME)


def open_session(path: str, threads: int):
    """An ONNX Runtime CPU session on `path`: every graph optimisation, `threads` threads for one
    operator at a time and none across operators (the graph is a chain: two cores gain nothing
    from running branches side by side and lose by oversubscribing)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class OnnxScoreNetwork(nn.Module):
    """A ScoreUNet whose body runs in an ONNX Runtime session (same call, same float32 output)."""

    def __init__(self, network: nn.Module, threads: int | None = None) -> None:
        from avdiff.inference.onnx_export import exported_body

        super().__init__()
        self.network = network
        threads = threads or torch.get_num_threads()
        try:
            self.session = open_session(str(exported_body(network)), threads)
        except Exception:  # noqa: BLE001 - a damaged cached graph (ONNX Runtime's own errors): export it again
            self.session = open_session(str(exported_body(network, fresh=True)), threads)

    def forward(self, sample: Tensor, noise_level: Tensor, cond: Tensor | None = None,
                cond_mask: Tensor | None = None) -> Tensor:
        if torch.is_grad_enabled() and sample.requires_grad:  # a gradient through the network: torch's
            return self.network(sample, noise_level, cond=cond, cond_mask=cond_mask)
        height, width = sample.shape[-2:]
        inputs, features, temb = self.network.body_inputs(sample.float(), noise_level, cond, cond_mask)
        feeds = {"inputs": _numpy(inputs), "features": _numpy(features), "temb": _numpy(temb)}
        out = self.session.run(None, feeds)[0]
        return torch.from_numpy(out[:, :, :height, :width]).to(sample.device)


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()


def exportable(network: nn.Module) -> bool:
    """Whether `network` splits into torch-side `body_inputs` and an exportable `body` (ScoreUNet
    does; a plug-in backbone may not, and then runs in torch)."""
    return callable(getattr(network, "body_inputs", None)) and callable(getattr(network, "body", None))


def score_network_for(network: nn.Module, choice: BackendChoice) -> tuple[nn.Module, BackendChoice]:
    """(`network` itself or its ONNX Runtime stand-in, the engine that runs it) for `choice`: a
    network that cannot be exported runs in torch, saying so."""
    if choice.name != ONNXRUNTIME:
        return network, choice
    if not exportable(network):
        return network, BackendChoice(TORCH, f"{type(network).__name__} has no exportable body: the score network "
                                             "runs in torch")
    return OnnxScoreNetwork(network), choice
