"""One small `Registry` type for every extension point of avdiff.

Samplers, score-network backbones, diffusion formulations, posterior (enhancement) methods,
landmark backends and corpus layouts are each a `Registry`: a name -> entry mapping that
registers by decorator or call, refuses a name twice, and answers an unknown name with one
error listing what is registered. Entries may also come from other installed packages through
the `avdiff.plugins` entry-point group (`avdiff.plugins.load_plugins`).

    SAMPLERS = Registry("sampler")

    @SAMPLERS.register("euler")
    def sample_euler(...): ...

    SAMPLERS.get("euler")          # the entry
    SAMPLERS.get("eulr")           # RegistryError: unknown sampler 'eulr'; registered: euler, ...

An entry can also be registered by reference (`register_lazy("unet", "module:attribute")`,
entry-point style): its name is listed at once, its module imported only when the entry is first
used, so listing names or checking a config does not load torch's model libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, NamedTuple, TypeVar, overload

from avdiff.errors import ConfigError

T = TypeVar("T")


class RegistryError(ConfigError, KeyError):
    """An unknown name, or a name registered twice. A ConfigError (one clear line on the command
    line) and a KeyError (a registry is a mapping)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class _Lazy(NamedTuple):
    """An entry registered by reference: `module:attribute`, imported when first used."""

    target: str

    def load(self) -> object:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    """Named entries of one kind (`kind` names it in errors: "sampler", "posterior method", ...).

    `hint` is appended to the unknown-name error (e.g. how to register one of your own).
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, T] = {}

    # ------------------------------------------------------------------ registering
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T, *, replace: bool = False) -> T: ...

    def register(self, name: str, entry: T | None = None, *, replace: bool = False) -> T | Callable[[T], T]:
        """Add `entry` under `name` (or, without an entry, a decorator that adds what it decorates).
        A name already taken is an error unless `replace` is set."""
        if entry is None:
            return lambda decorated: self.register(name, decorated, replace=replace)
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries and not replace and self._entries[name] is not entry:
            raise RegistryError(f"{self.kind} {name!r} is already registered; choose another name "
                                "(or register with replace=True)")
        self._entries[name] = entry
        return entry

    def register_lazy(self, name: str, target: str, *, replace: bool = False) -> None:
        """Add `name` now, its entry the attribute `target` ("module:attribute") imported when the
        entry is first used (`get`, `items`, `values`, `find`); `names` and `in` import nothing."""
        if ":" not in target:
            raise RegistryError(f"{self.kind} {name!r}: a lazy entry is 'module:attribute', got {target!r}")
        self.register(name, _Lazy(target), replace=replace)  # type: ignore[arg-type]

    def unregister(self, name: str) -> T:
        """Remove and return the entry `name` (tests that register a toy use this to clean up)."""
        return self._entry(self._known(name), remove=True)

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        """The entry `name`, or a RegistryError listing the registered names (the `avdiff.plugins`
        entry points are loaded first when `name` is not registered yet)."""
        return self._entry(self._known(name))

    def require(self, name: str) -> str:
        """`name` if it is registered (plug-ins loaded first if not), else the RegistryError of `get`;
        a lazy entry is not imported (config checks use this)."""
        return self._known(name)

    def _entry(self, name: str, remove: bool = False) -> T:
        entry = self._entries.pop(name) if remove else self._entries[name]
        if isinstance(entry, _Lazy):
            entry = entry.load()
            if not remove:
                self._entries[name] = entry
        return entry

    def _known(self, name: str) -> str:
        if name not in self._entries:  # perhaps a plug-in's: load them (once per process) and look again
            from avdiff.plugins import load_plugins

            load_plugins()
        if name not in self._entries:
            registered = ", ".join(self.names()) or "none"
            hint = f" ({self.hint})" if self.hint else ""
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {registered}{hint}")
        return name

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in registration order."""
        return [(name, self._entry(name)) for name in list(self._entries)]

    def values(self) -> list[T]:
        return [entry for _, entry in self.items()]

    def find(self, predicate: Callable[[T], bool]) -> tuple[str, T] | None:
        """The first (name, entry) whose entry satisfies `predicate`, or None."""
        return next(((name, entry) for name, entry in self.items() if predicate(entry)), None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
