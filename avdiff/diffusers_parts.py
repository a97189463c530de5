"""The parts of diffusers avdiff builds on, imported without the ones it never uses.

`import diffusers.models.unets.unet_2d_blocks` costs about 4.5 s on a 2-core CPU, of which
avdiff needs well under half: the packages `diffusers.models.transformers` and
`diffusers.models.unets` import every model diffusers has (about 90, pulling in HF
transformers and scipy) in their `__init__`, and `diffusers.utils` imports `torch._dynamo`
(1.1 s with sympy) only to mark its attention blocks for `torch.compile`. Every avdiff process
paid that at start. Here those two packages are entered without running their `__init__`
(Python then imports only the submodules asked for), and `torch._dynamo` and HF transformers
are held back while diffusers loads: diffusers guards both imports and then skips what needs
them (marking blocks for `torch.compile`; recognising transformers' quantisation configs in
pipelines), as it does where they are missing. Together: 6.0 s -> 3.9 s to import the pipeline.
`diffusers.utils.import_utils` also maps every installed package to its distribution at import
(`importlib.metadata.packages_distributions()`: reading every distribution's file list, about
0.5 s on a 2-core CPU in a full environment) for look-ups it makes later, if ever; it is handed a
mapping that is worked out on its first use instead.

Nothing else is lost: once the parts are loaded the stand-ins are removed, so a later
`import diffusers.models.transformers` runs the real `__init__` (reusing the modules already
loaded, same classes), and `torch._dynamo` and transformers import as usual when asked for.
Where any of this fails (another diffusers layout), diffusers is imported the ordinary way.
Every avdiff module imports diffusers through this one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType

# Packages whose `__init__` imports every model diffusers has; avdiff uses a few submodules of each.
_PACKAGES_ENTERED_BARE = ("diffusers.models.transformers", "diffusers.models.unets")
# Imported by diffusers inside try/except ImportError, for features avdiff never uses.
_HELD_BACK = ("torch._dynamo", "transformers")


class _PackageMapOnFirstUse(Mapping):
    """`importlib.metadata.packages_distributions()`, computed when first read."""

    def __init__(self, compute: Callable[[], Mapping[str, list[str]]]) -> None:
        self._compute, self._map = compute, None

    def _real(self) -> Mapping[str, list[str]]:
        if self._map is None:
            self._map = self._compute()
        return self._map

    def __getitem__(self, name: str) -> list[str]:
        return self._real()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._real())

    def __len__(self) -> int:
        return len(self._real())


@contextmanager
def _package_map_on_first_use() -> Iterator[None]:
    """While diffusers loads, `packages_distributions()` returns a map computed on its first read."""
    real = importlib.metadata.packages_distributions
    importlib.metadata.packages_distributions = lambda: _PackageMapOnFirstUse(real)
    try:
        yield
    finally:
        importlib.metadata.packages_distributions = real


@contextmanager
def _held_back() -> Iterator[None]:
    """Importing a held-back module raises ImportError inside, unless it was already loaded."""
    held = [name for name in _HELD_BACK if name not in sys.modules]
    for name in held:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        for name in held:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


@contextmanager
def _packages_entered_bare() -> Iterator[None]:
    """Register each package's module object without executing its `__init__` (its `__path__` set)."""
    stand_ins: dict[str, ModuleType] = {}
    try:
        for name in _PACKAGES_ENTERED_BARE:
            if name in sys.modules:
                continue
            spec = importlib.util.find_spec(name)
            if spec is None or spec.submodule_search_locations is None:
                continue
            stand_ins[name] = sys.modules[name] = importlib.util.module_from_spec(spec)
        yield
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
            parent, _, child = name.rpartition(".")
            if getattr(sys.modules.get(parent), child, None) is module:
                delattr(sys.modules[parent], child)


def _import_lean() -> None:
    with _package_map_on_first_use(), _held_back(), _packages_entered_bare():
        importlib.import_module("diffusers.models.unets.unet_2d_blocks")
        importlib.import_module("diffusers.models.embeddings")
        importlib.import_module("diffusers.models.modeling_utils")


def _import_diffusers() -> None:
    if "diffusers.models.unets.unet_2d_blocks" in sys.modules:
        return
    try:
        _import_lean()
    except Exception:  # another diffusers layout: forget the partial import, take the ordinary one
        for name in [n for n in sys.modules if n == "diffusers" or n.startswith("diffusers.")]:
            del sys.modules[name]
        importlib.import_module("diffusers.models.unets.unet_2d_blocks")


_import_diffusers()

from diffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402
from diffusers.models.embeddings import GaussianFourierProjection, TimestepEmbedding  # noqa: E402
from diffusers.models.modeling_utils import ModelMixin  # noqa: E402
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block, get_up_block  # noqa: E402
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME  # noqa: E402  (the weights' file name: folders stay diffusers')

__all__ = ["SAFETENSORS_WEIGHTS_NAME", "ConfigMixin", "GaussianFourierProjection", "ModelMixin", "TimestepEmbedding",
           "UNetMidBlock2D", "get_down_block", "get_up_block", "register_to_config"]
