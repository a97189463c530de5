"""The registry of posterior (enhancement) methods and presets, and how a name and options resolve.

Every entry is a method class with default settings: a method registers its class with its
settings class's defaults; a preset (`udiffse-paper`) registers an existing class with other
settings. `avdiff enhance --method`, its per-method flags, the config's `enhancement.method` and
`enhancement.options` all come from here.

    @register_method("my-method")
    class MyMethod(PosteriorMethod):
        settings_class = MySettings
        def run(self, problem): ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avdiff.config.loader import from_dict, to_dict
from avdiff.errors import ConfigError
from avdiff.registry import Registry

if TYPE_CHECKING:
    from avdiff.posterior.base import EnhancementMethod


@dataclass(frozen=True)
class MethodEntry:
    """A registered name: the method class it runs, its settings with this name's defaults, and
    one line for help texts."""

    method_class: type[EnhancementMethod]
    defaults: Any
    summary: str

    @property
    def is_preset(self) -> bool:
        """A preset: another name for a method, with settings other than the class's defaults."""
        return self.defaults != self.method_class.settings_class()

    def settings(self, options: Mapping[str, Any] | Any | None = None, source: str = "") -> Any:
        """These defaults updated by `options` (a mapping, or an instance of the settings class);
        an option the method does not have, a wrong type or a bad value is a ConfigError."""
        cls = self.method_class.settings_class
        if options is None:
            return self.defaults
        if isinstance(options, cls):
            return options
        if not isinstance(options, Mapping):
            raise ConfigError(f"{source or 'enhancement options'}: expected a mapping of {cls.__name__} "
                              f"options, got {type(options).__name__}")
        merged = {**to_dict(self.defaults), **options}
        return from_dict(cls, merged, source or f"options of posterior method {self.method_class.name!r}", "")


METHODS: Registry[MethodEntry] = Registry(
    "posterior method", "a method registered in your own module needs it imported, or installed as an "
    "avdiff.plugins entry point")


def register_method(name: str, summary: str = "") -> Callable[[type], type]:
    """Class decorator: register an `EnhancementMethod` subclass (`PosteriorMethod`, `VAEMethod`)
    under `name` with its settings class's defaults (the class's `name` is set to it)."""

    def add(method_class: type) -> type:
        method_class.name = name
        line = summary or (method_class.__doc__ or name).strip().splitlines()[0]
        METHODS.register(name, MethodEntry(method_class, method_class.settings_class(), line))
        return method_class

    return add


def register_preset(name: str, method: str, settings: Any, summary: str) -> None:
    """Register `name` as method `method` run with `settings` (an instance of its settings class)."""
    entry = METHODS.get(method)
    if not isinstance(settings, entry.method_class.settings_class):
        raise TypeError(f"preset {name!r}: settings must be a {entry.method_class.settings_class.__name__}")
    METHODS.register(name, MethodEntry(entry.method_class, settings, summary))


def method_entry(name: str) -> MethodEntry:
    """The registered method or preset `name` (a ConfigError listing them otherwise)."""
    return METHODS.get(name)


def option_fields() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """Every option name of the registered methods -> [(method name, its field)]: the CLI's flags."""
    found: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    for name, entry in METHODS.items():
        for field in dataclasses.fields(entry.method_class.settings_class):
            found.setdefault(field.name, []).append((name, field))
    return found

