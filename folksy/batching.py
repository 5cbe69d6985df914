"""Concurrent `predict` calls share one generation.

`mlflow models serve` answers each request in a thread of its own (up to six at once on two cores), so
eight clients meant up to six `generate` calls at once, each a batch of one prompt (times `best_of`), each
slowed by the others. A `RequestBatcher` runs one generation at a time instead, and each one takes every
request that arrived while the one before ran and asks for the same sampling: one batch of many prompts,
which costs less than its requests one by one (3.3x one request for six on a 2-core machine without AMX;
docs/benchmarks.md, "Serving under load").

A request with a `seed` runs alone, so that the seed reproduces its sample whatever else is being asked.
Results come back to each caller in its own prompts' order; an error in a shared generation reaches every
request in it.
"""

import threading
from collections.abc import Callable, Sequence

# The most prompts one shared generation takes; more wait for the next. Sayings are sampled in batches of
# 32 prompts (folksy.generation), so this bounds a caller's wait to two of those.
MAX_BATCH_PROMPTS = 64


class _Request:
    def __init__(self, prompts: list[str], values: dict):
        self.prompts, self.values = prompts, values
        self.done = threading.Event()
        self.result: list | None = None
        self.error: BaseException | None = None


class RequestBatcher:
    """`batcher(prompts, values)` returns `run(prompts, values)`'s per-prompt results; calls from many
    threads at once share `run` calls (one at a time) when their `values` are equal."""

    def __init__(self, run: Callable[[list[str], dict], Sequence], max_prompts: int = MAX_BATCH_PROMPTS):
        self._run, self.max_prompts = run, max_prompts
        self._running = threading.Lock()  # one generation at a time
        self._queue_lock = threading.Lock()
        self._queue: list[_Request] = []
        self.generations = 0  # how many `run` calls answered how many requests: the sharing, for tests and logs
        self.requests = 0

    def __call__(self, prompts: list[str], values: dict) -> list:
        request = _Request(list(prompts), values)
        if values.get("seed") is not None:  # alone: never queued, so nothing joins it
            with self._running:
                self._answer([request])
        else:
            with self._queue_lock:
                self._queue.append(request)
            while not request.done.is_set():
                with self._running:
                    if not request.done.is_set():
                        self._answer(self._take())
        if request.error is not None:
            raise request.error
        return request.result

    def _take(self) -> list[_Request]:
        """The oldest waiting request and, behind it, those that ask for the same sampling, up to max_prompts."""
        with self._queue_lock:
            first = self._queue[0]
            batch, size = [], 0
            for request in self._queue:
                if request.values == first.values and (not batch or size + len(request.prompts) <= self.max_prompts):
                    batch.append(request)
                    size += len(request.prompts)
            self._queue = [request for request in self._queue if request not in batch]
        return batch

    def _answer(self, batch: list[_Request]) -> None:
        self.generations, self.requests = self.generations + 1, self.requests + len(batch)
        try:
            results = list(self._run([prompt for request in batch for prompt in request.prompts], batch[0].values))
        except BaseException as error:  # noqa: BLE001 - handed to every caller in the batch, raised there
            for request in batch:
                request.error = error
                request.done.set()
            return
        start = 0
        for request in batch:
            request.result = results[start : start + len(request.prompts)]
            start += len(request.prompts)
            request.done.set()
