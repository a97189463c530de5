"""Loading and saving shared by avdiff's diffusers models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from avdiff.diffusers_parts import SAFETENSORS_WEIGHTS_NAME, ModelMixin



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


class LeanModelMixin(ModelMixin):
    """diffusers' ModelMixin, with the folder (config.json + diffusion_pytorch_model.safetensors)
    written and read here and `.to()` left to torch.

    diffusers' own `from_pretrained`, `save_pretrained` and `.to()` import its hooks package
    (tensor parallelism, group offloading) and with it `torch._dynamo`: 1.1 s of every process
    that loads a model, for features avdiff does not use. The folder is the same either way, and
    diffusers' `from_pretrained` is still taken when asked for one of its options (`torch_dtype`, ...).
    """

    @classmethod
    def from_pretrained(cls, folder: str | Path, **diffusers_options: Any) -> Self:
        """The model saved in `folder`, in evaluation mode, its tensors in storage of their own."""
        if diffusers_options:
            return own_aligned_storage(super().from_pretrained(folder, **diffusers_options))
        model = cls.from_config(cls.load_config(folder))
        model.load_state_dict(load_file(Path(folder) / SAFETENSORS_WEIGHTS_NAME), strict=True)  # copied into new storage
        return model.eval()

    def save_pretrained(self, folder: str | Path, **_: Any) -> None:
        """Write config.json and the weights (safetensors) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.save_config(folder)
        weights = {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}
        save_file(weights, folder / SAFETENSORS_WEIGHTS_NAME, metadata={"format": "pt"})

    def to(self, *args: Any, **kwargs: Any) -> Self:
        return nn.Module.to(self, *args, **kwargs)

    def cuda(self, *args: Any, **kwargs: Any) -> Self:
        return nn.Module.cuda(self, *args, **kwargs)
