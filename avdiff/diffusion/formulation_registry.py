"""The registry of diffusion formulations: `diffusion.formulation` names one.

Apart from the formulations themselves (`avdiff.diffusion.formulation`, diffusers config classes),
so a config's name is checked, and `avdiff env` lists them, without importing diffusers. Entries
are `DiffusionFormulation` subclasses; each builds itself from the config's `diffusion` section
(`from_avdiff_config`) and is found again by class name when a model folder is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avdiff.registry import Registry

if TYPE_CHECKING:
    from avdiff.diffusion.formulation import DiffusionFormulation

FORMULATIONS: Registry[type[DiffusionFormulation]] = Registry(
    "diffusion formulation", "a formulation of your own: a DiffusionFormulation subclass registered with "
    "FORMULATIONS.register(name, cls) in a module imported first, or an avdiff.plugins entry point")
FORMULATIONS.register_lazy("edm", "avdiff.diffusion.formulation:EDMFormulation")
FORMULATIONS.register_lazy("ouve", "avdiff.diffusion.formulation:OUVEFormulation")
