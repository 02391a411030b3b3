from __future__ import annotations

import os

# `make test` runs two pytest-xdist workers on the 2 cores: one thread each (torch, OpenBLAS and
# the commands the tests start inherit it). Two workers of two threads each spin on each other's
# cores: four of the heaviest test files took 454 s instead of 299 s, back to back.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (a newcomer's `make test` never meets an
# example nobody saw before); widen the search by hand with --hypothesis-seed when hunting bugs.
settings.register_profile("reidkit", derandomize=True, database=None)
settings.load_profile("reidkit")

# ONNX exports kept by the run (reidkit.inference.onnx_cache) go to a folder of its own, never
# into the user's ~/.cache; the commands the tests start inherit it.
os.environ["REIDKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="reidkit-test-cache-")

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end tests run first: with two workers (``make test`` runs pytest-xdist's
    ``-n 2``) the longest ones start at once instead of one of them finishing the run alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def expected():
    return json.loads((FIXTURES / "eval" / "expected.json").read_text())


def load_problem(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "eval" / f"{name}.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="session", params=["small", "small2"])
def problem(request):
    return request.param, load_problem(request.param)
