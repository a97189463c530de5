"""Where each registry of avdiff lives, by name: one table that the config checks and `avdiff env` read.

Every extension point is an `avdiff.registry.Registry` defined beside the code that uses it; this
table names its module and the modules whose import registers the built-in entries, so a caller
can reach one registry without importing the others (`registry("samplers")`).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from avdiff.registry import Registry


class ExtensionPoint(NamedTuple):
    """The registry `attribute` of `module`, complete once `fillers` are imported too."""

    module: str
    attribute: str
    fillers: tuple[str, ...] = ()


EXTENSION_POINTS: dict[str, ExtensionPoint] = {
    "samplers": ExtensionPoint("avdiff.diffusion.samplers", "SAMPLERS"),
    "backbones": ExtensionPoint("avdiff.models.backbones", "BACKBONES"),
    "formulations": ExtensionPoint("avdiff.diffusion.formulation_registry", "FORMULATIONS"),
    "posterior methods": ExtensionPoint("avdiff.posterior.registry", "METHODS", ("avdiff.posterior",)),
    "landmark backends": ExtensionPoint("avdiff.landmarks", "BACKENDS"),
    "layouts": ExtensionPoint("avdiff.prepare.layouts", "LAYOUTS", ("avdiff.prepare.speech_layouts",)),
}


def registry(name: str) -> Registry[Any]:
    """The registry `name` (a key of EXTENSION_POINTS) with its built-in entries registered."""
    point = EXTENSION_POINTS[name]
    for module in point.fillers:
        importlib.import_module(module)
    return getattr(importlib.import_module(point.module), point.attribute)
