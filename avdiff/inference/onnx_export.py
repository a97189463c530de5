"""The score network's body as an ONNX graph, exported once per set of weights and kept in a cache.

Only `ScoreUNet.body` is exported: every shape-dependent step (padding to the UNet's multiple,
the frequency channels, the condition's maps) stays in torch (`ScoreUNet.body_inputs`), so one
graph, dynamic in batch, frequency bins and frames, serves every STFT size, clip length and chunk.
The file's name is a fingerprint of the weights, the network's settings and the tools that
wrote it, so a retrained model, another torch or another avdiff never reads a stale graph.
Export takes about 2 s on 2 cores; later runs read the file. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from avdiff.media.files import temporary_path

OPSET = 17
GRAPH_FORMAT = 1  # bump when what is exported (inputs, outputs, their meaning) changes
INPUT_NAMES = ("inputs", "features", "temb")
OUTPUT_NAME = "out"
EXAMPLE_BINS, EXAMPLE_FRAMES = 256, 64  # the traced example's size (the graph is dynamic in both)


def cache_folder() -> Path:
    """Where exported graphs are kept: $AVDIFF_CACHE, else $XDG_CACHE_HOME/avdiff, else ~/.cache/avdiff."""
    if os.environ.get("AVDIFF_CACHE"):
        return Path(os.environ["AVDIFF_CACHE"]) / "onnx"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "avdiff" / "onnx"


def network_fingerprint(network: nn.Module) -> str:
    """A hex digest of the network's settings and tensors and of the exporter (torch, opset, format)."""
    import avdiff

    digest = hashlib.sha256()
    settings = dict(getattr(network, "config", {}))
    header = {"class": type(network).__name__, "config": settings, "torch": torch.__version__,
              "avdiff": avdiff.__version__, "opset": OPSET, "format": GRAPH_FORMAT}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in network.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


class _Body(nn.Module):
    """`network.body` as a module of its own, what the exporter traces."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, inputs: Tensor, features: Tensor, temb: Tensor) -> Tensor:
        return self.network.body(inputs, features, temb)


def example_inputs(network: nn.Module) -> tuple[Tensor, ...]:
    """`body_inputs` of a random one-item batch (the exporter traces the body on them)."""
    bins, frames = EXAMPLE_BINS, EXAMPLE_FRAMES
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 2, bins, frames, generator=generator)
    cond = torch.randn(1, network.config.cond_channels, frames, generator=generator)
    with torch.no_grad():
        return network.body_inputs(sample, torch.zeros(1), cond, torch.ones(1, frames, dtype=torch.bool))


def export_body(network: nn.Module, path: Path) -> Path:
    """Write the float32 body of `network` (a ScoreUNet on the CPU) to `path` as ONNX, atomically."""
    import copy

    float_network = copy.deepcopy(network).to(device="cpu", dtype=torch.float32).eval()
    dynamic = {"inputs": {0: "batch", 2: "bins", 3: "frames"}, "features": {0: "batch", 2: "frames"},
               "temb": {0: "batch"}, OUTPUT_NAME: {0: "batch", 2: "bins", 3: "frames"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python-side shape arithmetic
            torch.onnx.export(_Body(float_network), example_inputs(float_network), str(partial),
                              input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME], dynamic_axes=dynamic,
                              opset_version=OPSET, dynamo=False)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def exported_body(network: nn.Module, fresh: bool = False) -> Path:
    """The cached ONNX graph of `network`'s body, exported first when it is not there yet (or, with
    `fresh`, again: the cached file could not be read)."""
    path = cache_folder() / f"score-body-{network_fingerprint(network)}.onnx"
    return path if path.is_file() and not fresh else export_body(network, path)
