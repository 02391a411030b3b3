"""Every extension point of reidkit, populated: the registries and what is registered in each.

Kept apart from :mod:`reidkit.registry`, which every package imports, because listing the
registries imports the packages that fill them.
"""

from __future__ import annotations

from .registry import Registry


def all_registries() -> list[Registry]:
    """Every extension point of the package, each populated (imports the implementing modules)."""
    from .data.datasets import DATASETS
    from .inference.resolve import EMBEDDERS
    from .modeling.baseline import LOSSES
    from .modeling.registry import BACKBONES, HEADS, META_ARCHITECTURES
    from .pipeline.components import DETECTORS
    from .retrieval.engines import INDEX_ENGINES
    from .tracking.base import TRACKERS

    return [BACKBONES, HEADS, META_ARCHITECTURES, LOSSES, DATASETS, DETECTORS, EMBEDDERS, TRACKERS, INDEX_ENGINES]


def markdown_table() -> str:
    """The registries as the Markdown table in ``docs/architecture.md``."""
    rows = ["| extension point | chosen by | contract | registered |", "|---|---|---|---|"]
    for reg in all_registries():
        rows.append(f"| {reg.kind} | {reg.where or '-'} | {reg.contract} | {', '.join(f'`{n}`' for n in reg)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
