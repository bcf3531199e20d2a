"""eqjax.training on one device: fit, resume, checkpoints, early stopping, errors.

The multi-device, multi-process and SIGKILL checks run in subprocesses
(test_scale_out.py, slow tier)."""

import csv
import socket
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eqjax import training as T

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 3)).astype(np.float32)
W_TRUE = np.array([[1.0], [-2.0], [0.5]], np.float32)
Y = (X @ W_TRUE + 0.3).astype(np.float32)
DATA = {"x": X, "y": Y}
OPT = optax.adam(1e-1)


def init():
    return {"w": jnp.zeros((3, 1), jnp.float32), "b": jnp.zeros((1, 1), jnp.float32)}


def loss(p, b, key):
    noise = 0.01 * jax.random.normal(key, b["y"].shape, b["y"].dtype)
    err = b["x"] @ p["w"] + p["b"] - b["y"] - noise
    return jnp.mean(err**2), {"abs": jnp.mean(jnp.abs(err))}


def per_example(p, b):
    return {"mse": jnp.mean((b["x"] @ p["w"] + p["b"] - b["y"]) ** 2, axis=-1)}


EVAL = T.Evaluator(per_example, DATA, 20)  # 48 = 20 + 20 + 8 (padded, masked)


def run(steps=24, **kw):
    kw.setdefault("progress", False)
    return T.fit(
        loss, init(), OPT, T.ArrayLoader(DATA, 16, seed=1), steps=steps, key=3, **kw
    )


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def reference():
    return run(eval_fn=EVAL, eval_every=8)


def test_fit_trains_compiles_once_and_logs(reference, tmp_path):
    r = reference
    assert r.compiles == 1 and r.step == 24 and r.resumed_from is None
    steps, losses = r.log.column("train_loss")
    assert steps == list(range(1, 25)) and losses[-1] < 0.2 * losses[0]
    assert r.log.column("eval_mse")[0] == [8, 16, 24]
    assert "train_abs" in r.log.columns()
    want = float(
        np.mean((X @ np.asarray(r.params["w"]) + np.asarray(r.params["b"]) - Y) ** 2)
    )
    np.testing.assert_allclose(r.eval["mse"], want, rtol=1e-5)
    out = run(steps=4, results_dir=tmp_path, name="lin")
    rows = list(csv.DictReader(open(tmp_path / "lin_metrics.csv")))
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["train_loss"]) == out.log.rows[4]["train_loss"]
    assert (tmp_path / "lin_metrics.png").stat().st_size > 1000


class Interrupt(Exception):
    pass


def interrupt_at(k):
    def hook(step):
        if step == k:
            raise Interrupt

    return hook


def test_resume_is_bit_identical_and_log_continues(reference, tmp_path):
    ck, res = tmp_path / "ck", tmp_path / "res"
    kw = dict(eval_fn=EVAL, eval_every=8, checkpoint_dir=ck, checkpoint_every=5)
    with pytest.raises(Interrupt):
        run(on_step=interrupt_at(13), results_dir=res, **kw)
    assert sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) == [5, 10]
    r = run(resume=True, results_dir=res, **kw)
    assert r.resumed_from == 10 and r.compiles == 1
    for a, b in zip(leaves(reference.params), leaves(r.params), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(reference.opt_state), leaves(r.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = list(csv.DictReader(open(res / "train_metrics.csv")))
    assert [int(row["step"]) for row in rows] == list(range(1, 25))
    assert [float(row["train_loss"]) for row in rows] == reference.log.column(
        "train_loss"
    )[1]
    # keep=3: the newest three complete checkpoints survive
    assert sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) == [15, 20, 24]
    again = run(resume=True, **kw)  # a finished run resumes to the same end
    assert again.resumed_from == 24 and again.compiles == 0
    for a, b in zip(leaves(reference.params), leaves(again.params), strict=True):
        np.testing.assert_array_equal(a, b)


def _biggest_file(step_dir: Path) -> Path:
    files = [
        p
        for p in step_dir.rglob("*")
        if p.is_file() and p.name != T._checkpoint.MANIFEST
    ]  # noqa: SLF001
    return max(files, key=lambda p: p.stat().st_size)


def test_truncated_and_unfinished_checkpoints_are_skipped(reference, tmp_path):
    ck = tmp_path / "ck"
    kw = dict(eval_fn=EVAL, eval_every=8, checkpoint_dir=ck, checkpoint_every=5)
    with pytest.raises(Interrupt):
        run(on_step=interrupt_at(16), **kw)
    # 15 is complete; truncate one of its files. 10 loses its manifest, as when
    # a run dies after Orbax finished but before the manifest was written.
    victim = _biggest_file(ck / "15")
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    (ck / "10" / T._checkpoint.MANIFEST).unlink()  # noqa: SLF001
    with pytest.warns(RuntimeWarning, match="skipped") as rec:
        r = run(resume=True, **kw)
    msgs = " ".join(str(w.message) for w in rec)
    assert "15 skipped: files missing or changed" in msgs
    assert "10 skipped: no manifest" in msgs
    assert r.resumed_from == 5
    for a, b in zip(leaves(reference.params), leaves(r.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name.split("-")[0] for p in (ck / "_skipped").iterdir()) == [
        "10",
        "15",
    ]


def test_nothing_to_resume_warns_and_starts_fresh(tmp_path):
    with pytest.warns(RuntimeWarning, match="no complete checkpoint"):
        r = run(steps=2, checkpoint_dir=tmp_path / "empty", resume=True)
    assert r.resumed_from is None and r.step == 2


def test_bad_configuration_fails_fast(tmp_path):
    ck = tmp_path / "ck"
    run(steps=2, checkpoint_dir=ck)
    with pytest.raises(ValueError, match="already holds steps"):
        run(steps=2, checkpoint_dir=ck)
    other = lambda p, b, key: jnp.mean((b["x"] @ p["w"] - b["y"]) ** 2)
    with pytest.raises(T.CheckpointMismatchError, match="another model"):
        T.fit(
            other,
            {"w": jnp.zeros((3, 1), jnp.float32)},
            OPT,
            T.ArrayLoader(DATA, 16),
            steps=2,
            checkpoint_dir=ck,
            resume=True,
            progress=False,
        )
    with pytest.raises(TypeError, match="resumable"):
        T.fit(loss, init(), OPT, iter([DATA]), steps=1, checkpoint_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="needs a checkpoint_dir"):
        T.fit(loss, init(), OPT, T.ArrayLoader(DATA, 16), steps=1, resume=True)
    with pytest.raises(ValueError, match="not divisible by the 2 processes"):
        T.ArrayLoader(DATA, 15, process_count=2, process_index=0)
    with pytest.raises(ValueError, match="same leading batch axis"):
        T.shard_batch({"x": X[:4], "y": Y[:3]}, T.data_mesh())
    with pytest.raises(ValueError, match="devices=3 requested"):
        T.data_mesh(3)
    with pytest.raises(ValueError, match="not among"):
        run(steps=2, eval_fn=EVAL, eval_every=1, early_stopping=T.EarlyStopping("acc"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_coordinator_times_out_with_a_message():
    with pytest.raises(TimeoutError, match=r"did not answer within 0.5 s"):
        T.initialize(f"127.0.0.1:{_free_port()}", 2, 1, timeout_s=0.5)
    with pytest.raises(ValueError, match="host:port"):
        T.initialize("localhost", 2, 1)
    with pytest.raises(ValueError, match="0 <= process_id < num_processes"):
        T.initialize("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="needs a coordinator"):
        T.initialize(None, 2, 0)
    assert T.initialize(None, None, None) is False  # single process: nothing to do


def test_early_stopping_stops_and_restores_best():
    # lr so large that the loss blows up after a few steps: the best eval is early
    r = T.fit(
        lambda p, b, k: jnp.mean((b["x"] @ p["w"] + p["b"] - b["y"]) ** 2),
        init(),
        optax.sgd(0.9),
        T.ArrayLoader(DATA, 16, seed=1),
        steps=100,
        eval_fn=EVAL,
        eval_every=1,
        early_stopping=T.EarlyStopping("mse", patience=3),
        progress=False,
    )
    assert r.stopped_early and r.best is not None
    assert r.step == r.best["step"] + 3 < 100
    best_mse = EVAL(r.params)["mse"]
    assert best_mse == pytest.approx(r.best["mse"], rel=1e-6)
    assert EVAL(r.last_params)["mse"] > best_mse


def test_loaders_resume_exactly():
    a = T.ArrayLoader(DATA, 16, seed=4)
    seq = [next(a)["x"] for _ in range(7)]
    b = T.ArrayLoader(DATA, 16, seed=4)
    for _ in range(4):
        next(b)
    c = T.ArrayLoader(DATA, 16, seed=4)
    c.set_state(b.get_state())
    for want in seq[4:]:
        np.testing.assert_array_equal(next(c)["x"], want)
    # two processes' slices concatenate to the one-process batch
    halves = [
        T.ArrayLoader(DATA, 16, seed=4, process_index=i, process_count=2)
        for i in (0, 1)
    ]
    np.testing.assert_array_equal(
        np.concatenate([next(h)["x"] for h in halves]), seq[0]
    )
    with pytest.raises(ValueError, match="does not fit"):
        c.set_state({"epoch": 0, "index": 3})


def test_nnx_module_and_stacked_graphs():
    from flax import nnx

    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    params, pure, merge = T.nnx_loss(
        model, lambda m, b, k: jnp.mean((m(b["x"]) - b["y"]) ** 2)
    )
    r = T.fit(pure, params, OPT, T.ArrayLoader(DATA, 16), steps=60, progress=False)
    trained = merge(r.params)
    np.testing.assert_allclose(np.asarray(trained.kernel[...]), W_TRUE, atol=0.1)
    g = {"nodes": np.zeros((4, 2)), "n_node": np.array([3, 1])}
    st = T.stack_graphs([g, g])
    assert st["nodes"].shape == (2, 4, 2)
    with pytest.raises(ValueError, match="pad all to the same sizes"):
        T.stack_graphs([g, {"nodes": np.zeros((5, 2)), "n_node": np.array([3, 2])}])


def test_metrics_log_round_trip(tmp_path):
    log = T.MetricsLog(tmp_path / "m.csv")
    log.add(1, loss=0.1 + 0.2)
    log.add(2, loss=0.5, acc=1 / 3)
    log.add(3, loss=0.25)
    log.flush()
    back = T.MetricsLog(tmp_path / "m.csv")
    back.resume(2)
    assert back.rows == {1: {"loss": 0.1 + 0.2}, 2: {"loss": 0.5, "acc": 1 / 3}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert T.MetricsLog(None).plot(tmp_path / "x.png") is False
