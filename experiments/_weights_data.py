"""Data and small models shared by the eqjax.weights experiments (rebasin,
ebv_heads, neural_collapse): scikit-learn's digits (scikit-learn is in the
``experiments`` extra), or, only when asked for (``--synthetic-digits``), a seeded
synthetic stand-in of the same shape; Fashion-MNIST from
Debian's ``dataset-fashion-mnist`` package when present (else skipped); a
classifier trained full-batch with :func:`eqjax.training.fit` (the harness'
flags, one checkpoint folder per run)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

FASHION_DIRS = (
    Path("/usr/share/dataset-fashion-mnist"),
    Path("/usr/share/datasets/fashion-mnist"),
    Path("/usr/share/fashion-mnist"),
)


def digits(seed: int = 0, synthetic: bool = False):
    """``(x_train, y_train, x_test, y_test, source)``: 64 features in [0, 1],
    10 classes, a seeded 70/30 split. scikit-learn's 1797 digits (shipped inside
    the package: no network); with ``synthetic=True`` a synthetic set of the same
    size instead: each class a mixture of three blurred 8x8 stroke templates with
    pixel noise (learnable, not linearly trivial). ``source`` names which, for the
    results tables. Without scikit-learn and without ``synthetic`` it raises: the
    stand-in is never used silently."""
    if synthetic:
        x, y = _synthetic_digits(1797, 10, seed)
        source = "synthetic digits (--synthetic-digits; not scikit-learn's)"
    else:
        try:
            from sklearn.datasets import load_digits  # type: ignore[import-not-found]
        except ImportError as e:
            raise ImportError(
                "these experiments read scikit-learn's digits: pip install "
                "scikit-learn (it is in eqjax's 'experiments' extra), or pass "
                "--synthetic-digits to run on the synthetic stand-in"
            ) from e
        xd, yd = load_digits(return_X_y=True)
        x, y = np.asarray(xd, np.float32) / 16.0, np.asarray(yd, np.int32)
        source = "scikit-learn digits"
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    cut = int(0.7 * len(y))
    tr, te = idx[:cut], idx[cut:]
    return x[tr], y[tr], x[te], y[te], source


SYNTHETIC_HELP = (
    "run on a seeded synthetic stand-in of the digits instead of scikit-learn's "
    "(the results tables say so)"
)


def _synthetic_digits(n: int, k: int, seed: int, dim: int = 64, modes: int = 3):
    rng = np.random.default_rng(1000 + seed)
    side = int(np.sqrt(dim))
    templates = rng.random((k, modes, side, side)) < 0.3
    # blur: average with the four neighbours
    t = templates.astype(np.float32)
    t = (
        t
        + np.roll(t, 1, -1)
        + np.roll(t, -1, -1)
        + np.roll(t, 1, -2)
        + np.roll(t, -1, -2)
    ) / 5
    y = rng.integers(0, k, n).astype(np.int32)
    m = rng.integers(0, modes, n)
    shift = rng.integers(0, 1, (n, 2))  # no shifts: a template per mode
    x = np.stack(
        [np.roll(t[y[i], m[i]], tuple(shift[i]), (0, 1)) for i in range(n)]
    ).reshape(n, dim)
    x = np.clip(x + 0.25 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    return x, y


def gaussian_classes(k: int, dim: int, n_per: int, seed: int, spread: float = 0.6):
    """``k`` classes in ``dim`` dimensions, each a mixture of 2 Gaussians around
    random centres (for many-class heads: 200 classes)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, 2, dim)).astype(np.float32)
    y = np.repeat(np.arange(k), n_per).astype(np.int32)
    m = rng.integers(0, 2, y.size)
    x = centres[y, m] + spread * rng.standard_normal((y.size, dim)).astype(np.float32)
    return x, y


def fashion_mnist():
    """``(x_train, y_train, x_test, y_test)`` from Debian's package, or ``None``."""
    for d in FASHION_DIRS:
        f = d / "train-images-idx3-ubyte.gz"
        if f.exists():

            def read(name, offset, d=d):
                with gzip.open(d / name) as fh:
                    return np.frombuffer(fh.read(), np.uint8, offset=offset)

            xtr = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0
            ytr = read("train-labels-idx1-ubyte.gz", 8).astype(np.int32)
            xte = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784) / 255.0
            yte = read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int32)
            return xtr.astype(np.float32), ytr, xte.astype(np.float32), yte
    return None


def mlp(d_in: int, width: int, d_out: int, seed: int, depth: int = 2):
    """An ``nnx.Sequential`` MLP with ``depth`` hidden ReLU layers."""
    from flax import nnx

    rngs = nnx.Rngs(seed)
    layers: list[Any] = []
    d = d_in
    for _ in range(depth):
        layers += [nnx.Linear(d, width, rngs=rngs), nnx.relu]
        d = width
    layers.append(nnx.Linear(d, d_out, rngs=rngs))
    return nnx.Sequential(*layers)


def cross_entropy(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def full_batch(num_samples: int, mesh) -> int:
    """The largest global batch up to ``num_samples`` that the mesh divides (every
    device a whole number of samples): the whole training set on one device; on
    ``D`` devices ``num_samples mod D`` samples sit out each step (a different
    few every step: the loader reshuffles every epoch)."""
    d = mesh.devices.size
    if num_samples < d:
        raise ValueError(f"{num_samples} samples cannot fill {d} devices")
    return num_samples - num_samples % d


def fit_classifier(
    apply,
    params,
    x,
    y,
    *,
    steps: int,
    name: str,
    mesh,
    fit_kw: dict,
    optimizer=None,
    lr: float = 3e-3,
    seed: int = 0,
    batch: int = 0,
    eval_fn=None,
    eval_every: int = 0,
    results_dir=None,
    progress: bool = False,
):
    """Train ``apply(params, x) -> logits`` on ``(x, y)`` with cross-entropy by
    :func:`eqjax.training.fit`: ``steps`` steps of ``optimizer`` (default Adam
    ``lr``) on batches of ``batch`` samples from a resumable
    :class:`eqjax.training.ArrayLoader` (``0``: :func:`full_batch`, full-batch
    training), data-parallel over ``mesh``; ``fit_kw``: the run's checkpoint
    keywords (:func:`eqjax.training.fit_options`). Returns the ``FitResult``."""
    from eqjax import training as T

    n = len(y)
    b = full_batch(n, mesh) if batch == 0 else batch

    def loss(p, bt, key):
        return cross_entropy(apply(p, bt["x"]), bt["y"])

    return T.fit(
        loss,
        params,
        optimizer or optax.adam(lr),
        T.ArrayLoader({"x": np.asarray(x), "y": np.asarray(y)}, b, seed=seed),
        steps=steps,
        key=seed,
        mesh=mesh,
        eval_fn=eval_fn,
        eval_every=eval_every,
        results_dir=results_dir,
        name=name,
        progress=progress,
        **fit_kw,
    )


def metrics(logits, y):
    return {
        "loss": cross_entropy(logits, y),
        "acc": jnp.mean(jnp.argmax(logits, -1) == y),
    }
