from __future__ import annotations

import json
import os
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
