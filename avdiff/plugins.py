"""Plug-ins: other installed packages that add samplers, backbones, posterior methods, ... to avdiff.

A package declares an entry point in the `avdiff.plugins` group; its value names a module
(imported: registering on import) or a callable (`module:function`, called with no arguments):

    [project.entry-points."avdiff.plugins"]
    my-sampler = "my_package.avdiff_plugin"

`load_plugins()` loads every such entry point once per process. The command line calls it
before building its parser (so plug-in samplers and methods are in `--help`'s choices), model
loading before reading a model folder, and every registry when asked for a name it does not hold
(`avdiff.registry`). A plug-in that fails to load costs one warning line on stderr naming its
package and the error, never the command.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

GROUP = "avdiff.plugins"


@dataclass(frozen=True)
class Plugin:
    """One entry point of the group: its name, value, distribution and how loading it went."""

    name: str
    value: str
    package: str
    version: str
    error: str | None = None  # None: loaded

    @property
    def loaded(self) -> bool:
        return self.error is None


_PLUGINS: list[Plugin] | None = None  # None until the first load_plugins()


def load_plugins() -> list[Plugin]:
    """Load every `avdiff.plugins` entry point, once per process, and return what happened to each."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = []  # set first: a plug-in that asks a registry for a name while loading must not recurse
        for entry_point in entry_points(group=GROUP):
            plugin = _load(entry_point)
            _PLUGINS.append(plugin)
            if not plugin.loaded:
                print(f"avdiff: warning: plug-in {plugin.name!r} of package {plugin.package} not loaded: "
                      f"{plugin.error}", file=sys.stderr)
    return list(_PLUGINS)


def loaded_plugins() -> list[Plugin]:
    """The plug-ins found by `load_plugins` so far (empty before it ran)."""
    return list(_PLUGINS or [])


def _load(entry_point: EntryPoint) -> Plugin:
    dist = getattr(entry_point, "dist", None)
    package = dist.metadata["Name"] if dist is not None else entry_point.value.split(":")[0].split(".")[0]
    version = dist.version if dist is not None else "?"
    try:
        target = entry_point.load()
        if callable(target) and not isinstance(target, ModuleType):
            target()
    except Exception as error:  # noqa: BLE001 - any failure of someone else's code is one warning, not a crash
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return Plugin(entry_point.name, entry_point.value, package, version, message)
    return Plugin(entry_point.name, entry_point.value, package, version)
