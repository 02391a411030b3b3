"""Batching concurrent requests into one model call and one gallery pass.

Requests decode and resize their image in their own thread, then hand the array to a
:class:`Batcher`: one worker thread runs the model on everything that queued up while it was
busy (at most ``max_batch``). A second one does the same for gallery searches, which then share
one pass over the vectors (a matrix product instead of one matrix-vector product each).

A request alone runs at once, with no waiting for company; under load the batches grow by
themselves, which is where batching pays.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any, Callable, Sequence


class Batcher:
    """Runs ``fn`` on the inputs of many threads at once: ``submit(x)`` returns ``fn([.., x, ..])[i]``.

    ``fn`` takes a list of inputs and returns a list (or array) of as many outputs, output i for
    input i; an exception returned as output i is raised in request i alone. An exception that
    ``fn`` raises is raised in every request of that batch. Either way the worker keeps serving.
    """

    def __init__(self, fn: Callable[[list], Sequence], max_batch: int = 16, name: str = "reidkit-batcher"):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.fn, self.max_batch = fn, max_batch
        self.queue: queue.Queue = queue.Queue()
        #: How many batches of each size were run (for the metrics and the tests).
        self.batch_sizes: Counter[int] = Counter()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def submit(self, x: Any) -> Any:
        """``fn``'s output for ``x``, run in a batch with whatever else is waiting; blocks until done."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        future: Future = Future()
        self.queue.put((x, future))
        out = future.result()
        if isinstance(out, BaseException):  # ``fn`` may fail one input alone by returning its error
            raise out
        return out

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        if not self._closed:
            self._closed = True
            self.queue.put(None)
            self._worker.join()

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list) -> None:
        self.batch_sizes[len(batch)] += 1
        try:
            out = self.fn([x for x, _ in batch])
            if len(out) != len(batch):
                raise RuntimeError(f"the batched function returned {len(out)} rows for {len(batch)} inputs")
        except BaseException as e:  # every waiting request hears of it
            for _, future in batch:
                future.set_exception(e)
            return
        for (_, future), row in zip(batch, out):
            future.set_result(row)
