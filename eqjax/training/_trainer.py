"""The training loop: one jitted data-parallel step, evaluation, early stopping,
checkpoints, metrics, progress."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from ._checkpoint import Checkpointer, describe, fingerprint
from ._data import Resumable
from ._mesh import (
    check_global_batch,
    data_mesh,
    replicate,
    replicated,
    shard_batch,
    to_host,
)
from ._metrics import MetricsLog

LossFn = Callable[[Any, Any, jax.Array], Any]


class EarlyStopping(NamedTuple):
    """Stop when ``metric`` (a key of the evaluation's dict) has not improved by
    more than ``min_delta`` for ``patience`` evaluations; ``patience=None``
    never stops but still tracks the best evaluation. With ``restore_best``
    the run returns the parameters of the best evaluation."""

    metric: str
    patience: int | None = None
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = True


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``params``: final parameters (the best evaluation's with
    ``EarlyStopping(restore_best=True)``), replicated global arrays;
    ``last_params``: those of the last step; ``opt_state``; ``step``: steps
    done; ``eval``: the last evaluation; ``best``: ``{"step", metric}`` of the
    best evaluation (or ``None``); ``log``: the :class:`MetricsLog`;
    ``compiles``: how many times the train step was traced (1 when nothing
    recompiled); ``stopped_early``; ``resumed_from``: the restored step or
    ``None``; ``seconds``: wall time of the steps run here (compilation
    included); ``steps_per_second``: training steps per second after the first
    (compiling) step, evaluation and checkpoint time excluded;
    ``first_step_seconds``: the first step here (compilation included);
    ``train_seconds``: seconds of training steps after the first (compiling)
    step of each invocation, evaluation and checkpoint time excluded, summed
    over the invocations of a resumed run (what ``budget_s`` counts);
    ``stopped_by_budget``: the run ended because ``budget_s`` was spent.
    """

    params: Any
    last_params: Any
    opt_state: Any
    step: int
    eval: dict
    best: dict | None
    log: MetricsLog
    compiles: int
    stopped_early: bool
    resumed_from: int | None
    seconds: float
    steps_per_second: float
    first_step_seconds: float
    train_seconds: float = 0.0
    stopped_by_budget: bool = False


_EVAL_JIT: dict = {}


class Evaluator:
    """Means of per-example metrics over a fixed data set, sharded over the mesh.

    Args:
      metric_fn: ``(params, batch) -> {name: per-example values [b]}``.
      arrays: pytree of arrays with a leading example axis (the same on every
        process).
      batch_size: examples per jitted call; the last chunk is padded (and
        masked out) to the same size, so one program serves all chunks.
      mesh: the mesh (default: all devices); ``batch_size`` is rounded up to a
        multiple of its size.

    Evaluators of the same ``metric_fn`` object on the same mesh share one
    jitted program (validation and test sets of equal chunk size compile once).
    """

    def __init__(self, metric_fn, arrays, batch_size: int, mesh: Mesh | None = None):
        self.mesh = mesh or data_mesh()
        self.arrays = jax.tree.map(np.asarray, arrays)
        self.n = len(jax.tree.leaves(self.arrays)[0])
        d = self.mesh.devices.size
        self.chunk = max(d, -(-min(batch_size, self.n) // d) * d)
        procs, pid = jax.process_count(), jax.process_index()
        self._local = slice(pid * self.chunk // procs, (pid + 1) * self.chunk // procs)

        cache_key = (metric_fn, self.mesh)
        if cache_key not in _EVAL_JIT:  # one program per (metric_fn, mesh, shapes)

            def sums(params, batch, mask):
                out = metric_fn(params, batch)
                return {k: jnp.sum(jnp.where(mask, v, 0)) for k, v in out.items()}

            _EVAL_JIT[cache_key] = jax.jit(sums, out_shardings=replicated(self.mesh))
        self._sums = _EVAL_JIT[cache_key]

    def __call__(self, params) -> dict[str, float]:
        total: dict[str, float] = {}
        for start in range(0, self.n, self.chunk):
            idx = np.arange(start, start + self.chunk)
            mask = idx < self.n
            idx = np.minimum(idx, self.n - 1)[self._local]
            batch = jax.tree.map(lambda a, i=idx: a[i], self.arrays)
            gb, gm = shard_batch((batch, mask[self._local]), self.mesh)
            for k, v in self._sums(params, gb, gm).items():
                total[k] = total.get(k, 0.0) + float(to_host(v))
        return {k: v / self.n for k, v in total.items()}


def nnx_loss(model, loss: Callable[[Any, Any, jax.Array], Any]):
    """Split a Flax NNX module once, outside the hot loop.

    Args:
      model: an ``nnx.Module``.
      loss: ``(model, batch, key) -> loss`` (or ``(loss, aux)``).

    Returns:
      ``(params, pure_loss, merge)``: the module's ``nnx.Param`` state, a pure
      ``(params, batch, key) -> loss`` for :func:`fit`, and ``merge(params)``
      which rebuilds the module with trained parameters.
    """
    from flax import nnx  # flax stays at the edge: imported only here

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def pure(p, batch, key):
        return loss(nnx.merge(graphdef, p, rest), batch, key)

    return params, pure, lambda p: nnx.merge(graphdef, p, rest)


def _as_key_data(key) -> tuple[np.ndarray, str]:
    if key is None or isinstance(key, int | np.integer):
        key = jax.random.key(0 if key is None else int(key))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), str(jax.random.key_impl(key))
    return np.asarray(key), "threefry2x32"  # a raw uint32 key


def _progress(total: int | None, initial: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)


def fit(
    loss_fn: LossFn,
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Iterable[Any],
    *,
    steps: int,
    budget_s: float | None = None,
    key: Any = 0,
    mesh: Mesh | None = None,
    eval_fn: Callable[[Any], dict[str, float]] | None = None,
    eval_every: int = 0,
    early_stopping: EarlyStopping | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    keep: int = 3,
    resume: bool = False,
    asynchronous: bool = True,
    results_dir: str | os.PathLike | None = None,
    name: str = "train",
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> FitResult:
    """Train ``params`` with ``optimizer`` on ``data`` for ``steps`` steps,
    data-parallel over ``mesh``.

    The step ``(params, opt_state, batch, key, step) -> (params, opt_state,
    loss)`` is jitted once: the batch is sharded over the mesh's ``"data"``
    axis (:func:`shard_batch`), parameters and optimiser state are replicated
    (``out_shardings``), and the compiler inserts the gradient all-reduce.
    ``loss_fn(params, batch, key)`` must return the MEAN loss over the (global)
    batch, or ``(loss, aux)`` with ``aux`` a dict of scalars (logged as
    ``train_<name>``); ``key`` is ``fold_in(key, step)``, the same for a
    resumed run. For a Flax NNX model use :func:`nnx_loss`.

    Args:
      loss_fn: ``(params, batch, key) -> loss`` or ``(loss, aux)``.
      params: initial parameters (pytree; the same on every process).
      optimizer: an optax transformation.
      data: iterator of this process' part of each batch (pytrees with a
        leading batch axis); it must be :class:`Resumable` for checkpoints.
      steps: total number of steps (a resumed run continues up to it).
      budget_s: also stop once this many seconds of training steps have run
        (``None``: no limit). Counted from the end of each invocation's first
        (compiling) step, evaluation and checkpoint time excluded, summed over
        resumed invocations (the checkpoints store it): a finished budget run
        resumes to the same end. Every step waits for its result, so the clock
        reads device time, not dispatch. A budget makes the number of steps
        depend on the machine's speed: a budget-stopped run is NOT
        reproducible, and a run killed and resumed generally ends at another
        step (and with other parameters) than an uninterrupted one. Single
        process only (the processes' clocks would disagree on the last step).
      key: PRNG key or int seed.
      mesh: device mesh (default :func:`data_mesh`: every device).
      eval_fn: ``params -> {metric: float}`` (e.g. an :class:`Evaluator`), run
        every ``eval_every`` steps and after the last step.
      early_stopping: an :class:`EarlyStopping` on one of ``eval_fn``'s metrics.
      checkpoint_dir: Orbax checkpoints (params, optimiser state, step, data
        position, PRNG key, early-stopping state) every ``checkpoint_every``
        steps (0: only at the end), the last ``keep`` kept.
      resume: continue from the newest complete checkpoint in
        ``checkpoint_dir`` (incomplete or corrupt ones are skipped with a
        warning); without it a non-empty ``checkpoint_dir`` is an error.
      asynchronous: write checkpoints in Orbax' background thread.
      results_dir: where ``<name>_metrics.csv`` and ``<name>_metrics.png`` go
        (process 0 only); ``None`` writes nothing.
      name: run name (files, progress bar).
      progress: show a tqdm progress bar with the running loss (process 0).
      on_step: called with the step count after every step (tests, hooks).

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: batch not divisible by the devices, bad settings, a non-empty
        checkpoint directory without ``resume``.
      CheckpointMismatchError: the checkpoint holds another model/optimiser.
      TypeError: ``resume``/checkpoints with an iterator that is not resumable.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if budget_s is not None:
        if not (isinstance(budget_s, int | float) and budget_s > 0):
            raise ValueError(f"budget_s must be a number > 0 or None, got {budget_s!r}")
        if jax.process_count() > 1:
            raise ValueError(
                f"budget_s needs a single process (got {jax.process_count()}): each "
                "process' clock would stop at another step; bound the run by steps"
            )
    if eval_every < 0 or checkpoint_every < 0:
        raise ValueError("eval_every and checkpoint_every must be >= 0")
    if early_stopping is not None:
        if eval_fn is None:
            raise ValueError("early_stopping needs an eval_fn")
        if early_stopping.mode not in ("min", "max"):
            raise ValueError(
                f"early_stopping.mode must be 'min' or 'max', got {early_stopping.mode!r}"
            )
    mesh = mesh or data_mesh()
    main = jax.process_index() == 0
    it = iter(data)
    if (checkpoint_dir is not None or resume) and not isinstance(it, Resumable):
        raise TypeError(
            f"checkpoints need a resumable data iterator (get_state/set_state), got "
            f"{type(it).__name__}; use eqjax.training.ArrayLoader or IndexedSource"
        )
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")

    key_data, key_impl = _as_key_data(key)
    repl = replicated(mesh)
    state = {
        "params": params,
        "opt_state": optimizer.init(params),
        "key": key_data,
    }
    keep_best = early_stopping is not None and early_stopping.restore_best
    if keep_best:
        state["best_params"] = params
    state = replicate(state, mesh)
    fp = fingerprint(state)

    start, resumed_from = 0, None
    trained_before = 0.0  # training seconds of earlier invocations (resume)
    es = {"best": None, "best_step": None, "bad": 0, "stopped": False}
    last_eval: dict = {}
    log = MetricsLog(
        None if results_dir is None else Path(results_dir) / f"{name}_metrics.csv",
        enabled=main,
    )
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Checkpointer(checkpoint_dir, keep=keep, asynchronous=asynchronous)
        if not resume and ckpt.steps():
            ckpt.close()
            raise ValueError(
                f"checkpoint directory {checkpoint_dir} already holds steps "
                f"{ckpt.steps()}: pass resume=True (--resume) or use another directory"
            )
    if resume:
        assert ckpt is not None and isinstance(it, Resumable)
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), state
        )
        got = ckpt.restore_latest(abstract, fp)
        if got is None:
            warnings.warn(
                f"no complete checkpoint in {checkpoint_dir}: starting from step 0",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            state, meta = got
            start = resumed_from = int(meta["step"])
            it.set_state(meta["data"])
            es = meta["early_stopping"]
            last_eval = meta.get("eval", {})
            trained_before = float(meta.get("train_seconds", 0.0))
            log.resume(start)

    traces = [0]

    def step_fn(params, opt_state, batch, key_data, step):
        traces[0] += 1
        k = jax.random.fold_in(jax.random.wrap_key_data(key_data, impl=key_impl), step)

        def pair(p):
            out = loss_fn(p, batch, k)
            return out if isinstance(out, tuple) else (out, {})

        (loss, aux), grads = jax.value_and_grad(pair, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, aux

    jstep = jax.jit(step_fn, out_shardings=(repl, repl, repl, repl))

    def save(step: int):
        if ckpt is None:
            return
        drain()
        log.flush()  # the CSV covers every checkpoint: a resume loses no rows
        assert isinstance(it, Resumable)
        meta = {
            "step": step,
            "data": it.get_state(),
            "early_stopping": es,
            "eval": last_eval,
            "fingerprint": fp,
            "describe": describe(state),
            "key_impl": key_impl,
            "train_seconds": trained(),
        }
        ckpt.save(step, state, meta)

    def evaluate(step: int):
        nonlocal last_eval
        last_eval = {k: float(v) for k, v in eval_fn(state["params"]).items()}  # type: ignore[misc]
        log.add(step, **{f"eval_{k}": v for k, v in last_eval.items()})
        if early_stopping is not None:
            if early_stopping.metric not in last_eval:
                raise ValueError(
                    f"early_stopping.metric {early_stopping.metric!r} is not among "
                    f"the evaluation's metrics {sorted(last_eval)}"
                )
            v = last_eval[early_stopping.metric]
            sign = 1.0 if early_stopping.mode == "min" else -1.0
            if es["best"] is None or sign * (es["best"] - v) > early_stopping.min_delta:
                es.update(best=v, best_step=step, bad=0)
                if keep_best:
                    state["best_params"] = state["params"]
            else:
                es["bad"] += 1
                if (
                    early_stopping.patience is not None
                    and es["bad"] >= early_stopping.patience
                ):
                    es["stopped"] = True
        log.flush()

    # a budget run's length is unknown: no total (steps may be a loose cap)
    bar = _progress(steps if budget_s is None else None, start, progress and main, name)
    pending: list[tuple[int, Any, Any]] = []
    running = math.nan
    sync_every = 1 if budget_s is not None else max(1, steps // 100)
    t_first: float | None = None
    aside = 0.0  # seconds of evaluation and checkpoint saving in the loop
    paused: float | None = None  # the training clock stopped at this time

    def trained() -> float:
        """Training seconds so far, this invocation's first step excluded."""
        if t_first is None:
            return trained_before
        now = time.perf_counter() if paused is None else paused
        return trained_before + now - t_first - aside

    def drain():
        nonlocal running
        for s, loss, aux in pending:
            v = float(to_host(loss))
            running = v if math.isnan(running) else 0.9 * running + 0.1 * v
            log.add(
                s,
                train_loss=v,
                **{f"train_{k}": float(to_host(a)) for k, a in aux.items()},
            )
        pending.clear()

    def over_budget() -> bool:
        return budget_s is not None and trained() >= budget_s

    try:
        t0 = time.perf_counter()
        step = start
        checked = False
        by_budget = over_budget()  # a resumed run whose budget is spent
        while step < steps and not es["stopped"] and not by_budget:
            batch = next(it)
            if not checked:
                lead = jax.tree.leaves(batch)[0]
                check_global_batch(len(lead) * jax.process_count(), mesh)
                checked = True
            gb = shard_batch(batch, mesh)
            params_, opt_, loss, aux = jstep(
                state["params"], state["opt_state"], gb, state["key"], np.int32(step)
            )
            state["params"], state["opt_state"] = params_, opt_
            step += 1
            pending.append((step, loss, aux))
            if t_first is None:
                jax.block_until_ready(loss)
                t_first = time.perf_counter()
            elif budget_s is not None:
                jax.block_until_ready(loss)  # the clock must read finished steps
                by_budget = over_budget()
            if step % sync_every == 0 or step == steps:
                drain()
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{running:.4g}")
            if eval_fn is not None and eval_every and step % eval_every == 0:
                paused = time.perf_counter()
                drain()
                evaluate(step)
                aside += time.perf_counter() - paused
                paused = None
            if checkpoint_every and step % checkpoint_every == 0 and step < steps:
                paused = time.perf_counter()
                save(step)
                aside += time.perf_counter() - paused
                paused = None
            if on_step is not None:
                on_step(step)
        drain()
        jax.block_until_ready(state["params"])
        t_end = paused = time.perf_counter()  # the final evaluation and save: aside
        train_seconds = trained()
        ran = step - start
        if eval_fn is not None and (
            not last_eval or (ran and not (eval_every and step % eval_every == 0))
        ):
            evaluate(step)
        if ckpt is not None:
            save(step)
            ckpt.close()
    finally:
        if ckpt is not None:
            ckpt.close()
    if bar is not None:
        bar.update(step - bar.n)
        bar.close()
    log.flush()
    if results_dir is not None and main:
        log.plot(Path(results_dir) / f"{name}_metrics.png", title=name)
    rate = (
        (ran - 1) / (t_end - t_first - aside)
        if ran > 1 and t_first and t_end > t_first
        else math.nan
    )
    best = None
    if early_stopping is not None and es["best"] is not None:
        best = {"step": es["best_step"], early_stopping.metric: es["best"]}
    return FitResult(
        params=state["best_params"]
        if keep_best and es["best"] is not None
        else state["params"],
        last_params=state["params"],
        opt_state=state["opt_state"],
        step=step,
        eval=last_eval,
        best=best,
        log=log,
        compiles=traces[0],
        stopped_early=bool(es["stopped"]),
        resumed_from=resumed_from,
        seconds=t_end - t0,
        steps_per_second=rate,
        first_step_seconds=math.nan if t_first is None else t_first - t0,
        train_seconds=train_seconds,
        stopped_by_budget=bool(by_budget) and step < steps,
    )
