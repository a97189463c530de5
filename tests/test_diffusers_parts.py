"""avdiff imports diffusers' UNet blocks without the models it never uses, and loses nothing by it."""

from __future__ import annotations

import subprocess
import sys

LEAN_THEN_WHOLE = """
import sys
import avdiff.models.score_unet, avdiff.models.lip_encoder, avdiff.diffusion.formulation
skipped = ("diffusers.models.transformers", "diffusers.models.unets", "diffusers.models.unets.unet_2d_condition",
           "diffusers.models.transformers.transformer_flux", "torch._dynamo", "transformers")
print(sorted(name for name in skipped if name in sys.modules))

# Asked for afterwards, each imports whole, with the classes already loaded.
import diffusers.models.transformers as transformers_package
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets import UNet2DConditionModel
from diffusers.models.unets.unet_2d_blocks import get_down_block
import torch, torch._dynamo
print(transformers_package.Transformer2DModel is Transformer2DModel,
      get_down_block is avdiff.models.score_unet.get_down_block, UNet2DConditionModel.__name__,
      torch.compile(lambda x: 2 * x, backend="eager")(torch.ones(1)).item())
"""


def test_diffusers_loads_lean_and_the_rest_still_imports_whole():
    out = subprocess.run([sys.executable, "-c", LEAN_THEN_WHOLE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["[]", "True True UNet2DConditionModel 2.0"]


PACKAGE_MAP_ON_FIRST_USE = """
import importlib.metadata as metadata
real, calls = metadata.packages_distributions, []
metadata.packages_distributions = lambda: calls.append(1) or real()
import avdiff.models.score_unet
from diffusers.utils import import_utils
print(len(calls), metadata.packages_distributions is not real)
package_map = import_utils._package_map
print(package_map["torch"] == real()["torch"], "numpy" in package_map, len(calls))
"""


def test_diffusers_maps_packages_to_distributions_only_when_it_asks():
    """Importing diffusers no longer reads every distribution's file list; the map is the real one when read."""
    out = subprocess.run([sys.executable, "-c", PACKAGE_MAP_ON_FIRST_USE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["0 True", "True True 1"]
