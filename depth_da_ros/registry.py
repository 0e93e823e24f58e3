"""Name -> builder registries, one per family (networks, GAN losses, backends, datasets).

An unknown name raises an error that lists the known ones, so a typo in a config file
is reported with the fix next to it instead of as a KeyError deep inside a builder.
"""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: Dict[str, T] = {}
        self._lazy: Dict[str, Callable[[], T]] = {}

    def register_lazy(self, name: str, load: Callable[[], T]) -> None:
        """Register ``name`` now and build its entry with ``load()`` on the first ``get``: for an
        entry whose module is costly to import (torch takes seconds). ``load`` may import a module
        that registers the name with ``register``; its result is the entry either way."""
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self._lazy[name] = load

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@NETWORKS.register("unet")``. Registering a name twice is an error."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name in self._lazy:
            load = self._lazy.pop(name)  # before loading: the loaded module's register() finds it free
            self._entries[name] = load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.family} {name!r}; known: {known}") from None

    def is_loaded(self, name: str) -> bool:
        """Whether ``name``'s entry exists already (False for a lazy entry not yet used)."""
        return name in self._entries

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
