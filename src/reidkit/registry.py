"""One registry idea for every extension point: name -> implementation, plus what it declares.

Each extension point (backbones, heads, meta-architectures, losses, datasets, detectors, ReID
model kinds, trackers, index engines) owns one :class:`Registry`. The registry's ``contract``
says what a registered object must be; an implementation registers itself where it is defined:

    @BACKBONES.register("build_lite0_backbone")
    def build_lite0(cfg): ...

and may declare facts that callers check instead of testing types, as keyword arguments
(``needs_frames=True``, ``sized=True``, ``output="loss_cls"``); :meth:`Registry.info` returns
them. Adding an implementation is one new definition and its registration.
:mod:`reidkit.extension_points` lists every registry (``python -m reidkit.extension_points``
prints the table in ``docs/architecture.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, Mapping, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered implementation: its canonical name, the object, its other spellings and
    what it declared at registration."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Implementations of one extension point by name.

    ``kind`` names the point in errors ("unknown detector 'yolov9'"), ``where`` says where users
    write the name (a config key or an option), ``contract`` what a registered object must be.
    Names are compared case-insensitively when ``case_sensitive`` is False (dataset names)."""

    def __init__(self, kind: str, contract: str, where: Optional[str] = None, case_sensitive: bool = True):
        self.kind, self.contract, self.where = kind, contract, where
        self.case_sensitive = case_sensitive
        self._entries: dict[str, Entry[T]] = {}  # canonical name -> entry, in registration order
        self._lookup: dict[str, str] = {}  # every spelling (folded) -> canonical name

    def _fold(self, name: str) -> str:
        return name if self.case_sensitive else name.lower()

    def register(self, name: str, *aliases: str, **info: Any):
        """Decorator: register the decorated object under ``name`` (and ``aliases``), declaring ``info``."""
        def deco(obj: T) -> T:
            self.add(name, obj, *aliases, **info)
            return obj
        return deco

    def add(self, name: str, obj: T, *aliases: str, **info: Any) -> None:
        """Register ``obj``; a spelling registered twice is an error (two files claiming one name)."""
        for spelling in (name, *aliases):
            if self._fold(spelling) in self._lookup:
                raise KeyError(f"{self.kind} {spelling!r} is registered twice")
        entry = Entry(name, obj, tuple(aliases), dict(info))
        self._entries[name] = entry
        for spelling in (name, *aliases):
            self._lookup[self._fold(spelling)] = name

    def entry(self, name: str) -> Entry[T]:
        """The entry registered under ``name`` or one of its aliases; a clear error otherwise."""
        canonical = self._lookup.get(self._fold(str(name)))
        if canonical is None:
            where = f" ({self.where})" if self.where else ""
            raise ValueError(f"unknown {self.kind} {name!r}{where}: expected one of {', '.join(self)}")
        return self._entries[canonical]

    def get(self, name: str) -> T:
        """The object registered under ``name``."""
        return self.entry(name).obj

    def info(self, name: str) -> Mapping[str, Any]:
        """What the implementation declared when it registered (requirements, capabilities)."""
        return self.entry(name).info

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._fold(name) in self._lookup

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self)})"
