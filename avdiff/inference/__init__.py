"""Inference engines for the score network: torch (the reference) and ONNX Runtime (CPUs).

The engines' names (`avdiff.inference.choices`) load without torch; the rest on first use."""

from avdiff.inference.choices import AUTO, BACKEND_CHOICES, ONNXRUNTIME, TORCH
from avdiff.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {name: "avdiff.inference.runtime" for name in (
    "BackendChoice", "OnnxScoreNetwork", "choose_backend", "onnxruntime_available", "score_network_for")})

__all__ = ["AUTO", "BACKEND_CHOICES", "ONNXRUNTIME", "TORCH", "BackendChoice", "OnnxScoreNetwork", "choose_backend",
           "onnxruntime_available", "score_network_for"]
