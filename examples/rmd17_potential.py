"""An rMD17 interatomic potential in a few lines of eqjax.nn building blocks.

Species embedding (``C x 0e``) → ``layers`` × [per-edge Gaunt tensor product of the
sender's features with the edge harmonics ``Y(r̂_ij)``, weighted per edge by a radial
MLP of ``|r_ij|`` (Bessel basis × smooth cutoff), summed over neighbours → irreps
``Linear`` → ``Gate``] → ``Linear`` to one scalar per atom → energy; forces are
``-∂E/∂R``. Every block is O(3)-equivariant, so the energy is invariant and the
forces equivariant (checked by ``tests/nn/test_rmd17_example.py`` to 1e-10 in
float64).

Run (reads ``../shared/data/rmd17``, no download)::

    python examples/rmd17_potential.py --molecule ethanol --steps 300
    python examples/rmd17_potential.py --quick      # a few steps, a few frames
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eqjax.nn import Gate, GauntTensorProduct, Linear, RadialMLP, gate_irreps


def load(data_dir: str | Path, molecule: str = "ethanol", split: str = "01"):
    """``(train, test)`` dicts with ``z (N,)``, ``R (F, N, 3)`` Å, ``E (F,)``
    kcal/mol, ``F (F, N, 3)`` kcal/mol/Å, or ``None`` when the files are absent."""
    out = []
    for part in ("train", "test"):
        path = Path(data_dir) / f"rmd17_{molecule}_{part}_{split}.npz"
        if not path.exists():
            return None
        d = np.load(path)
        out.append(
            {
                "z": np.asarray(d["nuclear_charges"]),
                "R": np.asarray(d["coords"]),
                "E": np.asarray(d["energies"]),
                "F": np.asarray(d["forces"]),
            }
        )
    return tuple(out)


class Potential(nnx.Module):
    """Energy of one molecule ``R (N, 3)``; the graph is every ordered pair
    ``i ≠ j`` (the radial weights vanish smoothly beyond ``cutoff``)."""

    def __init__(
        self,
        species: np.ndarray,
        *,
        channels: int = 16,
        lmax: int = 2,
        layers: int = 2,
        num_basis: int = 8,
        cutoff: float = 5.0,
        normalization: str = "component",
        rngs: nnx.Rngs,
    ):
        uniq, idx = np.unique(np.asarray(species), return_inverse=True)
        n = len(species)
        self.species_index = idx.astype(np.int32)
        i, j = np.nonzero(~np.eye(n, dtype=bool))
        self.receivers, self.senders = i.astype(np.int32), j.astype(np.int32)
        self.avg_neighbors = float(max(n - 1, 1))
        self.embed = nnx.Embed(len(uniq), channels, rngs=rngs)
        self.sh_irreps = e3nn.Irreps.spherical_harmonics(lmax)  # 0e+1o+2e…
        hidden = e3nn.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])
        node = e3nn.Irreps(f"{channels}x0e")
        tps, radials, lins, gates = [], [], [], []
        for _ in range(layers):
            tp = GauntTensorProduct(
                node, self.sh_irreps, lmax_out=lmax, normalization=normalization,
                rngs=rngs,
            )  # fmt: skip
            tps.append(tp)
            radials.append(
                RadialMLP(num_basis, cutoff, (32,), tp.weight_numel, rngs=rngs)
            )
            lins.append(Linear(hidden, gate_irreps(hidden), biases=True, rngs=rngs))
            gates.append(Gate(gate_irreps(hidden)))
            node = hidden
        self.tps, self.radials = nnx.List(tps), nnx.List(radials)
        self.lins, self.gates = nnx.List(lins), nnx.List(gates)
        self.readout = Linear(hidden, "0e", rngs=rngs)
        self.shift = nnx.Param(jnp.zeros(()))
        self.scale = nnx.Param(jnp.ones(()))

    def features(self, R: jax.Array) -> list[e3nn.IrrepsArray]:
        """Node features after each layer (``N x hidden``)."""
        vec = R[self.senders] - R[self.receivers]
        dist = jnp.sqrt(jnp.sum(vec**2, axis=-1))
        sh = e3nn.spherical_harmonics(
            self.sh_irreps, vec, normalize=True, normalization="component"
        )
        emb = self.embed.embedding[...].astype(R.dtype)[self.species_index]
        h = e3nn.IrrepsArray(f"{emb.shape[-1]}x0e", emb)
        out = []
        for tp, radial, lin, gate in zip(
            self.tps, self.radials, self.lins, self.gates, strict=True
        ):
            hs = e3nn.IrrepsArray(h.irreps, h.array[self.senders])
            msg = tp(hs, sh, weights=radial(dist))
            agg = jax.ops.segment_sum(
                msg.array, self.receivers, len(self.species_index)
            )
            m = e3nn.IrrepsArray(msg.irreps, agg / self.avg_neighbors)
            new = gate(lin(m))
            h = new + h if new.irreps == h.irreps else new
            out.append(h)
        return out

    def energy(self, R: jax.Array) -> jax.Array:
        h = self.features(R)[-1]
        e_atom = self.readout(h).array[..., 0]
        n = e_atom.shape[0]
        return self.scale[...].astype(R.dtype) * jnp.sum(e_atom) + n * self.shift[
            ...
        ].astype(R.dtype)

    def energy_and_forces(self, R: jax.Array):
        e, g = jax.value_and_grad(self.energy)(R)
        return e, -g


def train(model, train_set, *, steps, batch, lr, w_force=10.0, seed=0, log=print):
    """Adam on ``(E - Ê)² + w_force · mean |F - F̂|²`` (energies centred)."""
    E0 = float(np.mean(train_set["E"]))
    graph, params, rest = nnx.split(model, nnx.Param, ...)
    opt = optax.adam(lr)
    state = opt.init(params)

    def loss(params, R, E, F):
        m = nnx.merge(graph, params, rest)
        e, f = jax.vmap(m.energy_and_forces)(R)
        return jnp.mean((e - (E - E0)) ** 2) + w_force * jnp.mean((f - F) ** 2)

    @jax.jit
    def step(params, state, R, E, F):
        val, g = jax.value_and_grad(loss)(params, R, E, F)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, val

    rng = np.random.default_rng(seed)
    n = len(train_set["E"])
    losses = []
    for s in range(steps):
        k = rng.choice(n, size=min(batch, n), replace=False)
        params, state, val = step(
            params,
            state,
            jnp.asarray(train_set["R"][k], jnp.float32),
            jnp.asarray(train_set["E"][k], jnp.float32),
            jnp.asarray(train_set["F"][k], jnp.float32),
        )
        losses.append(float(val))
        if s % max(steps // 5, 1) == 0 or s == steps - 1:
            log(f"step {s:4d}  loss {losses[-1]:.3f}")
    nnx.update(model, params)
    return losses


def force_mae(model, test_set, n: int) -> float:
    R = jnp.asarray(test_set["R"][:n], jnp.float32)
    _, f = jax.jit(jax.vmap(model.energy_and_forces))(R)
    return float(jnp.mean(jnp.abs(f - jnp.asarray(test_set["F"][:n]))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data/rmd17")
    p.add_argument("--molecule", default="ethanol")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--normalization", default="component")
    p.add_argument("--quick", action="store_true", help="10 steps on 32 frames")
    a = p.parse_args(argv)
    data = load(a.data_dir, a.molecule)
    if data is None:
        print(f"rMD17 files for {a.molecule!r} not found under {a.data_dir}: skipped")
        return 0
    tr, te = data
    if a.quick:
        a.steps, a.n_train, a.n_test = 10, 32, 16
    tr = {k: (v[: a.n_train] if k != "z" else v) for k, v in tr.items()}
    model = Potential(tr["z"], normalization=a.normalization, rngs=nnx.Rngs(0))
    h0 = model.features(jnp.asarray(tr["R"][0], jnp.float32))[0]
    print(f"first-layer feature RMS ({a.normalization}): "
          f"{float(jnp.sqrt(jnp.mean(h0.array**2))):.3f}")  # fmt: skip
    mae0 = force_mae(model, te, a.n_test)
    t = time.perf_counter()
    losses = train(model, tr, steps=a.steps, batch=a.batch, lr=a.lr)
    mae = force_mae(model, te, a.n_test)
    print(
        f"{a.molecule}: {a.steps} steps in {time.perf_counter() - t:.1f} s, "
        f"loss {losses[0]:.2f} -> {losses[-1]:.2f}, test force MAE "
        f"{mae0:.2f} -> {mae:.2f} kcal/mol/Å (n_test={a.n_test})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
