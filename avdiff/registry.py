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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from avdiff.errors import ConfigError

T = TypeVar("T")


class RegistryError(ConfigError, KeyError):
    """An unknown name, or a name registered twice. A ConfigError (one clear line on the command
    line) and a KeyError (a registry is a mapping)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


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

    def unregister(self, name: str) -> T:
        """Remove and return the entry `name` (tests that register a toy use this to clean up)."""
        return self._entries.pop(self._known(name))

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        """The entry `name`, or a RegistryError listing the registered names."""
        return self._entries[self._known(name)]

    def _known(self, name: str) -> str:
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
        return list(self._entries.items())

    def values(self) -> list[T]:
        return list(self._entries.values())

    def find(self, predicate: Callable[[T], bool]) -> tuple[str, T] | None:
        """The first (name, entry) whose entry satisfies `predicate`, or None."""
        return next(((name, entry) for name, entry in self._entries.items() if predicate(entry)), None)

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
