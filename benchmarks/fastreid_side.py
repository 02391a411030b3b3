"""What the side-by-side benchmarks share: peak memory of a worker, and importing fast-reid on a
CPU-only PyTorch 2 machine with the fewest possible run-time work-arounds (nothing of it is copied).

- ``collections.Mapping`` (removed in Python 3.10) is aliased to ``collections.abc.Mapping``;
- its loaders' CUDA-stream prefetch (``DataLoaderX``, which needs a GPU) becomes a plain
  ``DataLoader`` over the same dataset, sampler, workers and collate function.
"""

from __future__ import annotations

import collections
import collections.abc
import resource
import sys
from pathlib import Path


def peak_rss_gb() -> float:
    """This process's resident high-water mark. Not ru_maxrss: on Linux that survives exec, so a
    worker would inherit the parent's peak at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def import_fastreid(checkout: Path) -> None:
    """Make a fast-reid checkout (and its ``demo/`` folder) importable and runnable on CPU."""
    import torch

    collections.Mapping = collections.abc.Mapping
    sys.path[:0] = [str(checkout), str(checkout / "demo")]
    import fastreid.data.build

    class CPULoader(torch.utils.data.DataLoader):
        """fast-reid's DataLoaderX without its CUDA-stream prefetch."""

        def __init__(self, local_rank: int, **kwargs) -> None:
            kwargs["pin_memory"] = False
            super().__init__(**kwargs)

    fastreid.data.build.DataLoaderX = CPULoader


def trainable_snapshot(model) -> tuple[list, list]:
    """(trainable parameters, copies of their values) to check later that training moved them."""
    params = [p for p in model.parameters() if p.requires_grad]
    return params, [p.detach().clone() for p in params]


def count_moved(snapshot: tuple[list, list]) -> int:
    import torch

    params, before = snapshot
    return sum(not torch.equal(a, p.detach()) for a, p in zip(before, params))
