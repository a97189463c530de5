"""Loading helpers shared by avdiff's diffusers models."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def own_aligned_storage(module: nn.Module) -> nn.Module:
    """Give every parameter and buffer its own freshly allocated (64-byte aligned) storage.

    Tensors loaded from safetensors can sit at unaligned offsets of one shared buffer; CPU
    kernels then take other code paths and results differ from the saved model's in the last
    bits. Copying restores bit-identical outputs after save -> load (and aligned SIMD loads).
    """
    for tensor in list(module.parameters()) + list(module.buffers()):
        tensor.data = tensor.data.clone()
    return module
