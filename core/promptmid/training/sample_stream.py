"""Training samples drawn in worker processes, for a trainer whose network step is faster than one CPU
core can make samples (a GPU): random crops, warps, SAR augmentation and the optical crop's phase
congruency all run on the CPU.

Sample ``k`` draws from its own generator, seeded ``(seed, k)``, and the loss continues from that
generator's state, so a run is the same whatever the number of workers (but not the same as the
in-process path, whose one generator serves every sample in turn: the shipped recipes use that one).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterator, Optional

import numpy as np

_WORKER: dict[str, Any] = {}  # the pairs and the draw function, inherited by the forked workers


def samples_from(make: Callable[[Any, np.random.Generator], Optional[Any]], pairs: list,
                 rng: np.random.Generator) -> Iterator[tuple[Any, np.random.Generator]]:
    """Samples from one generator: a random pair and ``make(pair, rng)`` until it gives one, then the same
    generator for the loss (the in-process path of the shipped recipes: one generator for everything)."""
    while True:
        sample = make(pairs[int(rng.integers(len(pairs)))], rng)
        if sample is not None:
            yield sample, rng


def draw_sample(make: Callable[[Any, np.random.Generator], Optional[Any]], pairs: list, seed: int, k: int) -> tuple[Any, dict]:
    """Sample ``k`` from its own generator, with the generator's state after it."""
    sample, rng = next(samples_from(make, pairs, np.random.default_rng([seed, k])))
    return sample, rng.bit_generator.state


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker: the workers are the parallelism


def _draw_in_worker(seed: int, k: int) -> tuple[Any, dict]:
    return draw_sample(_WORKER["make"], _WORKER["pairs"], seed, k)


class SampleStream:
    """Samples ``start, start + 1, ...`` in order, made ahead by ``workers`` forked processes (at most
    ``ahead`` per worker in flight). Use as a context manager; iterate for ``(sample, rng)``."""

    def __init__(self, make: Callable[[Any, np.random.Generator], Optional[Any]], pairs: list, seed: int,
                 workers: int, start: int = 0, ahead: int = 4, timeout_s: float = 300.0) -> None:
        self.make, self.pairs, self.seed, self.workers, self.timeout_s = make, pairs, seed, workers, timeout_s
        self.next_k, self.ahead = start, ahead
        self.pool: Optional[mp.pool.Pool] = None
        self.pending: deque = deque()

    def __enter__(self) -> "SampleStream":
        _WORKER.update(make=self.make, pairs=self.pairs)
        self.pool = mp.get_context("fork").Pool(self.workers, initializer=_init_worker)
        for _ in range(self.workers * self.ahead):
            self._submit()
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        _WORKER.clear()

    def _submit(self) -> None:
        self.pending.append(self.pool.apply_async(_draw_in_worker, (self.seed, self.next_k)))
        self.next_k += 1

    def __iter__(self) -> Iterator[tuple[Any, np.random.Generator]]:
        while True:
            sample, state = self.pending.popleft().get(timeout=self.timeout_s)  # a dead worker fails the run
            self._submit()
            rng = np.random.default_rng()
            rng.bit_generator.state = state
            yield sample, rng
