"""Name -> builder registries, one per extension point (backbones, heads, meta-architectures)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Builders by name. ``register()`` decorates; ``get(name)`` fails naming the known choices."""

    def __init__(self, kind: str, config_key: str):
        self.kind = kind
        self.config_key = config_key
        self._items: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        def deco(fn: T) -> T:
            for name in names or (fn.__name__,):
                if name in self._items:
                    raise KeyError(f"{self.kind} {name!r} is registered twice")
                self._items[name] = fn
            return fn
        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r} ({self.config_key}): expected one of "
                             f"{', '.join(sorted(self._items))}") from None

    def names(self) -> list[str]:
        return sorted(self._items)


BACKBONES: Registry = Registry("backbone", "MODEL.BACKBONE.NAME")
HEADS: Registry = Registry("head", "MODEL.HEADS.NAME")
META_ARCHITECTURES: Registry = Registry("meta-architecture", "MODEL.META_ARCHITECTURE")
