"""The batcher behind `reid serve`: concurrent inputs share calls, every caller gets its own
output, and errors reach only the callers they belong to."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from reidkit.serve.batching import Batcher


def test_concurrent_inputs_share_calls_and_each_gets_its_own_row():
    entered, gate = threading.Event(), threading.Event()
    calls = []

    def square(xs):
        entered.set()
        gate.wait(5)  # the first call holds the worker until the others have queued
        calls.append(len(xs))
        return np.stack(xs) ** 2

    batcher = Batcher(square, max_batch=4)
    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(batcher.submit, np.full(3, 0, np.float32))]
        assert entered.wait(5)  # the first input runs alone
        futures += [pool.submit(batcher.submit, np.full(3, i, np.float32)) for i in range(1, 9)]
        deadline = time.monotonic() + 5
        while batcher.queue.qsize() < 8 and time.monotonic() < deadline:  # eight wait
            time.sleep(0.01)
        gate.set()
        out = [f.result(timeout=10) for f in futures]
    batcher.close()
    for i, row in enumerate(out):
        np.testing.assert_array_equal(row, np.full(3, i * i, np.float32))
    assert sum(calls) == 9 and max(calls) == 4 and len(calls) == 3, calls  # 1, then 4 and 4
    assert dict(batcher.batch_sizes) == {1: 1, 4: 2}


def test_an_error_reaches_only_its_callers_and_the_worker_keeps_serving():
    def fn(xs):
        if any(x == "boom" for x in xs):
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"bad {x}") if x < 0 else x * 10 for x in xs]

    batcher = Batcher(fn, max_batch=8)
    with pytest.raises(RuntimeError, match="whole batch"):
        batcher.submit("boom")
    with pytest.raises(ValueError, match="bad -1"):
        batcher.submit(-1)
    assert batcher.submit(4) == 40
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)


def test_a_wrong_number_of_outputs_is_an_error_not_a_wrong_answer():
    batcher = Batcher(lambda xs: [1, 2], max_batch=2)
    with pytest.raises(RuntimeError, match="2 rows for 1 inputs"):
        batcher.submit(0)
    batcher.close()
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(lambda xs: xs, max_batch=0)
