"""eqjax.training.fit_options (flags -> fit keywords per run) and fit's budget_s."""

import argparse
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eqjax import training as T

RNG = np.random.default_rng(1)
X = RNG.normal(size=(32, 2)).astype(np.float32)
DATA = {"x": X, "y": (X @ np.array([[1.0], [-1.0]], np.float32)).astype(np.float32)}


def loss(p, b, key):
    return jnp.mean((b["x"] @ p - b["y"]) ** 2)


def per_example(p, b):
    return {"mse": jnp.mean((b["x"] @ p - b["y"]) ** 2, axis=-1)}


def run(steps, **kw):
    kw.setdefault("progress", False)
    p0 = jnp.zeros((2, 1), jnp.float32)
    loader = T.ArrayLoader(DATA, 8, seed=0)
    return T.fit(loss, p0, optax.sgd(0.1), loader, steps=steps, key=0, **kw)


def parse(*flags):
    return T.add_arguments(argparse.ArgumentParser()).parse_args(list(flags))


def test_fit_options_per_run_folders_and_errors():
    args = parse("--checkpoint-dir", "ck", "--checkpoint-every", "5", "--keep", "2")
    assert T.fit_options(args, "GIN + SPE") == {
        "checkpoint_dir": Path("ck") / "GIN + SPE",
        "checkpoint_every": 5,
        "keep": 2,
        "resume": False,
    }
    assert T.fit_options(parse("--checkpoint-dir", "ck", "--resume"), "a")["resume"]
    off = T.fit_options(parse(), "a")
    assert off == {
        "checkpoint_dir": None,
        "checkpoint_every": 0,
        "keep": 3,
        "resume": False,
    }
    for bad in ["", ".", "..", "a/b", "../a", "a\0b"]:
        with pytest.raises(ValueError, match="path component"):
            T.fit_options(args, bad)
    with pytest.raises(ValueError, match="--resume needs --checkpoint-dir"):
        T.fit_options(parse("--resume"), "a")
    with pytest.raises(TypeError, match="add_arguments"):
        T.fit_options(argparse.Namespace(checkpoint_dir=None), "a")


def test_fit_options_checkpoint_each_run_in_its_own_folder(tmp_path):
    args = parse("--checkpoint-dir", str(tmp_path))
    for name in ("m1", "m2"):
        run(2, **T.fit_options(args, name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1", "m2"]
    assert (tmp_path / "m1" / "2").is_dir() and (tmp_path / "m2" / "2").is_dir()
    r = run(
        4, **T.fit_options(parse("--checkpoint-dir", str(tmp_path), "--resume"), "m1")
    )
    assert r.resumed_from == 2 and r.step == 4


def test_budget_stops_and_excludes_evaluation_time():
    evaluator = T.Evaluator(per_example, DATA, 32)

    def slow_eval(p):
        time.sleep(0.05)  # counted, it would end the budget after two steps
        return evaluator(p)

    r = run(
        1000,
        budget_s=0.1,
        eval_fn=slow_eval,
        eval_every=1,
        on_step=lambda s: time.sleep(0.01),  # counted: part of the step
    )
    assert r.stopped_by_budget and not r.stopped_early
    assert 3 < r.step < 12, r.step
    assert 0.1 <= r.train_seconds < 0.1 + 0.1, r.train_seconds
    assert r.log.column("eval_mse")[0][-1] == r.step
    # the first (compiling) step is not counted: a tiny budget still runs two
    tiny = run(1000, budget_s=1e-9)
    assert tiny.step == 2 and tiny.stopped_by_budget
    # reaching ``steps`` first is not a budget stop
    assert not run(3, budget_s=100.0).stopped_by_budget


def test_budget_resumes_with_the_time_left(tmp_path):
    ck = tmp_path / "ck"
    first = run(3, budget_s=100.0, checkpoint_dir=ck)
    assert first.step == 3 and not first.stopped_by_budget and first.train_seconds > 0
    more = run(6, budget_s=100.0, checkpoint_dir=ck, resume=True)
    assert more.resumed_from == 3 and more.step == 6
    assert more.train_seconds > first.train_seconds  # summed over invocations
    ck2 = tmp_path / "ck2"
    spent = run(
        1000, budget_s=0.05, checkpoint_dir=ck2, on_step=lambda s: time.sleep(0.01)
    )
    assert spent.stopped_by_budget and spent.step < 1000
    again = run(1000, budget_s=0.05, checkpoint_dir=ck2, resume=True)
    # a finished budget run resumes to the same end: no step, same parameters
    assert again.resumed_from == spent.step == again.step and again.stopped_by_budget
    assert again.train_seconds == pytest.approx(spent.train_seconds)
    np.testing.assert_array_equal(np.asarray(again.params), np.asarray(spent.params))


def test_budget_bad_values():
    for bad in (0, -1.0, "1", float("nan")):
        with pytest.raises(ValueError, match="budget_s"):
            run(2, budget_s=bad)
