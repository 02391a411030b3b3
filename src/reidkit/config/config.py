"""Hierarchical configuration with fast-reid's file format: YAML, ``_BASE_`` inheritance,
``KEY VALUE`` overrides and strict key/type checking. The result can be frozen."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from .defaults import default_tree

BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


class CfgNode(dict):
    """A dict whose keys are also attributes; nested dicts are CfgNodes. Frozen nodes refuse writes."""

    _FROZEN = "__frozen__"

    def __init__(self, tree: dict[str, Any] | None = None):
        super().__init__()
        object.__setattr__(self, CfgNode._FROZEN, False)
        for key, value in (tree or {}).items():
            super().__setitem__(key, CfgNode(value) if isinstance(value, dict) else value)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if self.is_frozen():
            raise AttributeError(f"config is frozen: cannot set {key!r}")
        super().__setitem__(key, CfgNode(value) if isinstance(value, dict) and not isinstance(value, CfgNode)
                            else value)

    def __deepcopy__(self, memo):
        return CfgNode({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def is_frozen(self) -> bool:
        return object.__getattribute__(self, CfgNode._FROZEN)

    def freeze(self, frozen: bool = True) -> "CfgNode":
        object.__setattr__(self, CfgNode._FROZEN, frozen)
        for value in self.values():
            if isinstance(value, CfgNode):
                value.freeze(frozen)
        return self

    def clone(self) -> "CfgNode":
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, CfgNode) else v for k, v in self.items()}

    def dump(self) -> str:
        """YAML text of this config (tuples written as lists)."""
        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v
        return yaml.safe_dump(plain(self.to_dict()), sort_keys=True, default_flow_style=None)

    def merge_from_file(self, path: str | Path) -> "CfgNode":
        """Merge a YAML file (and, first, the files its ``_BASE_`` names, relative to it)."""
        for file, tree in _load_with_bases(Path(path), ()):
            _merge(self, tree, file, prefix="")
        return self

    def merge_from_dict(self, tree: dict, source: str) -> "CfgNode":
        """Merge a nested mapping (e.g. a config saved in a checkpoint), checked like a file."""
        _merge(self, tree, source, prefix="")
        return self

    def merge_from_list(self, opts: Iterable[str], source: str = "command line") -> "CfgNode":
        """Merge ``["KEY.SUB", "VALUE", ...]`` pairs; values are parsed as Python/YAML literals."""
        opts = list(opts)
        if len(opts) % 2:
            raise ConfigError(f"overrides from the {source} must be KEY VALUE pairs, got an odd number: {opts}")
        for full_key, raw in zip(opts[0::2], opts[1::2]):
            node = self
            parts = full_key.split(".")
            for i, part in enumerate(parts[:-1]):
                if not isinstance(node.get(part), CfgNode):
                    raise ConfigError(f"unknown config key {'.'.join(parts[:i + 1])!r} (from {source} "
                                      f"override {full_key})")
                node = node[part]
            leaf = parts[-1]
            if leaf not in node:
                raise ConfigError(f"unknown config key {full_key!r} (from {source})")
            node[leaf] = _coerce(node[leaf], _decode(raw), full_key, source)
        return self


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error, not "the last wins"."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> list[tuple[Path, dict]]:
    path = path.resolve() if path.exists() else path
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path in chain:
        raise ConfigError(f"config files include each other in a cycle: {' -> '.join(map(str, chain + (path,)))}")
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(tree).__name__}")
    base = tree.pop(BASE_KEY, None)
    result = []
    if base is not None:
        bases = base if isinstance(base, list) else [base]
        for b in bases:
            base_path = Path(b).expanduser()
            if not base_path.is_absolute():
                base_path = path.parent / base_path
            result.extend(_load_with_bases(base_path, chain + (path,)))
    result.append((path, tree))
    return result


def _merge(node: CfgNode, tree: dict, file: Path | str, prefix: str) -> None:
    for key, value in tree.items():
        full = f"{prefix}{key}"
        if key not in node:
            raise ConfigError(f"unknown config key {full!r} in {file}")
        current = node[key]
        if isinstance(current, CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} in {file} must be a mapping of sub-keys, got {value!r}")
            _merge(current, value, file, prefix=f"{full}.")
        else:
            node[key] = _coerce(current, _decode(value), full, str(file))


def _decode(value: Any) -> Any:
    """Strings that spell Python literals (``("A", "B")``, ``1e-7``) become those literals."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", tuple: "list"}.get(
        type(value), type(value).__name__)


def _coerce(default: Any, value: Any, key: str, source: str) -> Any:
    """``value`` converted to the type of ``default``, or a ConfigError naming key, source and type."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, (int, float)) and not isinstance(value, bool) and isinstance(value, (int, float)):
        if isinstance(default, float):
            return float(value)
        if isinstance(value, int) or float(value).is_integer():
            return int(value)
    elif isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{key} in {source}: expected {_type_name(default)}, got {value!r} ({_type_name(value)})")


def get_cfg() -> CfgNode:
    """A fresh copy of the defaults (fast-reid's keys and values)."""
    return CfgNode(default_tree())


def check_values(cfg: CfgNode, source: str) -> CfgNode:
    """``cfg`` itself when every value is in its range (``validate.RULES``), else a ConfigError
    naming the first key and value that is not, and ``source``."""
    from .validate import problems

    bad = problems(cfg)
    if bad:
        more = f" (and {len(bad) - 1} more: {'; '.join(bad[1:3])})" if len(bad) > 1 else ""
        raise ConfigError(f"{bad[0]} (in {source}){more}")
    return cfg


def load_config(path: str | Path | None = None, opts: Iterable[str] = (), freeze: bool = True) -> CfgNode:
    """Defaults, merged with ``path`` (and its ``_BASE_`` files), then ``KEY VALUE`` overrides;
    values are range-checked (``validate``)."""
    cfg = get_cfg()
    if path is not None:
        cfg.merge_from_file(path)
    opts = list(opts)
    cfg.merge_from_list(opts)
    source = " + ".join(([str(path)] if path is not None else ["the defaults"]) + (["the overrides"] if opts else []))
    check_values(cfg, source)
    return cfg.freeze() if freeze else cfg
