"""Resumable data iterators: their position is part of every checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np


@runtime_checkable
class Resumable(Protocol):
    """An iterator of batches whose position can be saved and restored.

    ``get_state()`` returns a JSON-serialisable dict; ``set_state(state)``
    continues from it, so that the batches after a restore are exactly those an
    uninterrupted run would have seen.
    """

    def __next__(self) -> Any: ...

    def get_state(self) -> dict: ...

    def set_state(self, state: dict) -> None: ...


class ArrayLoader:
    """Shuffled minibatches of in-memory arrays, reshuffled every epoch from
    ``(seed, epoch)``, remainder dropped, each process yielding its own slice.

    Args:
      arrays: pytree of arrays with a shared leading sample axis.
      batch_size: the GLOBAL batch size (all processes together).
      seed: shuffling seed.
      shuffle: ``False`` keeps the order (``0, 1, 2, ...``).
      process_index, process_count: which slice of every global batch this
        process reads (default ``jax.process_index()`` / ``jax.process_count()``).

    Every process must hold the same ``arrays`` (or at least the same sample
    count); process ``p`` of ``P`` reads rows ``p*B/P .. (p+1)*B/P`` of each
    global batch, so the global batch does not depend on ``P``.

    >>> it = ArrayLoader({"x": np.arange(6)}, 2, shuffle=False)
    >>> [int(b["x"][0]) for b in (next(it), next(it), next(it), next(it))]
    [0, 2, 4, 0]
    >>> it.get_state()
    {'epoch': 1, 'index': 1}
    """

    def __init__(
        self,
        arrays: Any,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        process_index: int | None = None,
        process_count: int | None = None,
    ):
        leaves = jax.tree.leaves(arrays)
        if not leaves:
            raise ValueError("ArrayLoader needs at least one array")
        sizes = {len(x) for x in leaves}
        if len(sizes) != 1:
            raise ValueError(f"arrays disagree on the sample count: {sizes}")
        (self.num_samples,) = sizes
        self.process_index = (
            jax.process_index() if process_index is None else process_index
        )
        self.process_count = (
            jax.process_count() if process_count is None else process_count
        )
        if batch_size < 1 or batch_size > self.num_samples:
            raise ValueError(
                f"batch_size={batch_size} must be in 1..{self.num_samples} "
                "(the number of samples)"
            )
        if batch_size % self.process_count:
            raise ValueError(
                f"batch_size={batch_size} is not divisible by the "
                f"{self.process_count} processes"
            )
        self.arrays = jax.tree.map(np.asarray, arrays)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.steps_per_epoch = self.num_samples // batch_size
        self.epoch, self.index = 0, 0
        self._perm: tuple[int, np.ndarray] | None = None

    def _order(self) -> np.ndarray:
        if self._perm is None or self._perm[0] != self.epoch:
            order = (
                np.random.default_rng([self.seed, self.epoch]).permutation(
                    self.num_samples
                )
                if self.shuffle
                else np.arange(self.num_samples)
            )
            self._perm = (self.epoch, order)
        return self._perm[1]

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        B, local = self.batch_size, self.batch_size // self.process_count
        start = self.index * B + self.process_index * local
        idx = self._order()[start : start + local]
        self.index += 1
        if self.index == self.steps_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        return jax.tree.map(lambda a: a[idx], self.arrays)

    def get_state(self) -> dict:
        """``{"epoch": e, "index": i}``: the next batch is batch ``i`` of epoch ``e``."""
        return {"epoch": self.epoch, "index": self.index}

    def set_state(self, state: dict) -> None:
        """Continue from a :meth:`get_state` dict."""
        epoch, index = int(state["epoch"]), int(state["index"])
        if not 0 <= index < self.steps_per_epoch:
            raise ValueError(
                f"iterator state {state} does not fit this loader "
                f"({self.steps_per_epoch} batches per epoch)"
            )
        self.epoch, self.index = epoch, index


class IndexedSource:
    """Batch ``i`` is ``fn(i)``: generated data (a seeded sampler) made resumable.

    ``fn`` returns this process' part of batch ``i`` (use
    ``jax.process_index()`` inside it when several processes run); it must be
    deterministic in ``i``.

    >>> src = IndexedSource(lambda i: {"x": np.full((2,), i)})
    >>> _ = next(src); int(next(src)["x"][0]), src.get_state()
    (1, {'index': 2})
    """

    def __init__(self, fn: Callable[[int], Any], start: int = 0):
        self.fn, self.index = fn, int(start)

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        out = self.fn(self.index)
        self.index += 1
        return out

    def get_state(self) -> dict:
        """``{"index": i}``: the next batch is ``fn(i)``."""
        return {"index": self.index}

    def set_state(self, state: dict) -> None:
        """Continue from a :meth:`get_state` dict."""
        self.index = int(state["index"])
