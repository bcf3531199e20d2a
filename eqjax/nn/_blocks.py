"""NNX building blocks for equivariant interatomic potentials (e3nn-jax's Flax glue
is Linen only): an irreps ``Linear``, a ``Gate`` and a radial MLP for per-edge
weights. Thin wrappers: the mathematics is e3nn-jax's ``FunctionalLinear`` and
``gate`` (Weiler et al., "3D Steerable CNNs", NeurIPS 2018, for the gate) and
:func:`eqjax.tensor_products.bessel_basis` / :func:`~eqjax.tensor_products.smooth_cutoff`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
from flax import nnx

from ..tensor_products import bessel_basis, smooth_cutoff
from ._gaunt import check_dtype, check_int, check_irreps_input


def _irreps(value: Any, name: str) -> e3nn.Irreps:
    try:
        irreps = e3nn.Irreps(value)
    except (ValueError, TypeError, AssertionError) as e:
        raise ValueError(f"{name} is not valid irreps: {value!r} ({e})") from None
    if irreps.dim == 0:
        raise ValueError(f"{name} has no components: {value!r}")
    return irreps


class Linear(nnx.Module):
    """Equivariant linear map between irreps: each output irrep is a learnable
    linear combination of the input irreps of the same type (plus a bias on
    ``0e`` outputs when ``biases=True``), with e3nn-jax's path normalisation.

    Args:
      irreps_in: irreps of the input (checked at call time).
      irreps_out: irreps of the output; every output irrep needs an input irrep of
        the same type (or, for ``0e`` with ``biases=True``, a bias).
      biases: add a learnable bias to ``0e`` outputs.
      dtype: computation dtype (``None``: the input's).
      param_dtype: parameter dtype.
      rngs: ``nnx.Rngs`` (keyword-only).

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> from flax import nnx
      >>> lin = Linear("4x0e+2x1o", "3x0e+5x1o", rngs=nnx.Rngs(0))
      >>> lin(e3nn.normal("4x0e+2x1o", jax.random.key(1), (7,))).irreps
      3x0e+5x1o
    """

    def __init__(
        self,
        irreps_in: Any,
        irreps_out: Any,
        *,
        biases: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.irreps_in = _irreps(irreps_in, "irreps_in")
        irreps_out = _irreps(irreps_out, "irreps_out")
        if not isinstance(biases, bool):
            raise TypeError(f"biases must be a bool, got {biases!r}")
        self.dtype = check_dtype(dtype, "dtype", allow_none=True)
        param_dtype = check_dtype(param_dtype, "param_dtype", allow_none=False)
        reachable = {ir for _, ir in self.irreps_in} | (
            {e3nn.Irrep(0, 1)} if biases else set()
        )
        missing = [str(ir) for _, ir in irreps_out if ir not in reachable]
        if missing:
            raise ValueError(
                f"irreps_out {irreps_out} needs {missing}, which irreps_in "
                f"{self.irreps_in} does not contain: a linear map cannot create them"
            )
        self._lin = e3nn.FunctionalLinear(self.irreps_in, irreps_out, biases=biases)
        self.irreps_out = self._lin.irreps_out
        init = jax.nn.initializers.normal(1.0)
        self.weights = nnx.List(
            [
                nnx.Param(init(rngs.params(), ins.path_shape, param_dtype))
                for ins in self._lin.instructions
            ]
        )

    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        """``x``: ``(*batch, irreps_in.dim)`` -> ``(*batch, irreps_out.dim)``."""
        check_irreps_input(x, self.irreps_in, "x", type(self).__name__)
        dtype = self.dtype or x.dtype
        ws = [w[...].astype(dtype) for w in self.weights]
        x = x.astype(dtype)
        f = lambda v: self._lin(ws, v)  # noqa: E731
        for _ in range(x.ndim - 1):
            f = jax.vmap(f)
        return f(x)


def gate_irreps(irreps_out: Any) -> e3nn.Irreps:
    """The irreps a :class:`Gate` needs to output ``irreps_out`` (scalars first):
    its scalars, then one even gate scalar per non-scalar channel, then the
    non-scalars.

    Example:
      >>> gate_irreps("8x0e+4x1o+4x2e")
      8x0e+8x0e+4x1o+4x2e
    """
    irreps_out = _irreps(irreps_out, "irreps_out")
    scalars = e3nn.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
    vectors = e3nn.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
    gates = e3nn.Irreps(f"{vectors.num_irreps}x0e") if vectors else e3nn.Irreps("")
    return scalars + gates + vectors


class Gate(nnx.Module):
    """Gated nonlinearity (Weiler et al., NeurIPS 2018): scalars go through an
    activation, each non-scalar channel is multiplied by its own activated gate
    scalar. The input holds ``scalars + gates + non-scalars`` with the gates the
    last scalars (see :func:`gate_irreps`); this is e3nn-jax's :func:`e3nn.gate`
    with the input irreps fixed and checked. No parameters.

    Args:
      irreps_in: irreps of the input, e.g. ``gate_irreps("8x0e+4x1o")``.
      even_act, odd_act, even_gate_act, odd_gate_act: activations (e3nn's
        meaning; normalised to unit second moment as e3nn does).

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> g = Gate("4x0e+2x0e+2x1o")
      >>> g.irreps_out
      4x0e+2x1o
    """

    def __init__(
        self,
        irreps_in: Any,
        *,
        even_act: Callable = jax.nn.silu,
        odd_act: Callable = jnp.tanh,
        even_gate_act: Callable = jax.nn.sigmoid,
        odd_gate_act: Callable = jnp.tanh,
    ):
        self.irreps_in = _irreps(irreps_in, "irreps_in")
        for name, f in (
            ("even_act", even_act),
            ("odd_act", odd_act),
            ("even_gate_act", even_gate_act),
            ("odd_gate_act", odd_gate_act),
        ):
            if not callable(f):
                raise TypeError(f"{name} must be callable, got {f!r}")
        self._acts = (even_act, odd_act, even_gate_act, odd_gate_act)
        try:
            out = jax.eval_shape(
                lambda a: self._gate(e3nn.IrrepsArray(self.irreps_in, a)),
                jax.ShapeDtypeStruct((self.irreps_in.dim,), jnp.float32),
            )
        except (ValueError, AssertionError) as e:
            raise ValueError(
                f"irreps_in {self.irreps_in} is not a gate input (scalars, then "
                f"one gate scalar per non-scalar channel, then the non-scalars; see "
                f"eqjax.nn.gate_irreps): {e}"
            ) from None
        self.irreps_out = out.irreps

    def _gate(self, x):
        ea, oa, ega, oga = self._acts
        return e3nn.gate(
            x, even_act=ea, odd_act=oa, even_gate_act=ega, odd_gate_act=oga
        )

    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        check_irreps_input(x, self.irreps_in, "x", type(self).__name__)
        return self._gate(x)


class RadialMLP(nnx.Module):
    """Per-edge weights from edge lengths: Bessel basis × smooth cutoff, then an
    MLP (SiLU), the output multiplied by the cutoff again so every weight goes to
    zero smoothly at ``cutoff`` (NequIP/MACE-style radial network; basis and
    envelope from DimeNet, ICLR 2020).

    Args:
      num_basis: Bessel functions (int ≥ 1).
      cutoff: radius ``> 0``.
      hidden: widths of the hidden layers (ints ≥ 1).
      out_features: number of weights per edge (e.g. a Gaunt module's
        ``weight_numel``).
      dtype, param_dtype: as in :class:`Linear`.
      rngs: ``nnx.Rngs`` (keyword-only).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> mlp = RadialMLP(8, 5.0, (16,), 12, rngs=nnx.Rngs(0))
      >>> mlp(jnp.array([0.0, 1.0, 6.0])).shape
      (3, 12)
    """

    def __init__(
        self,
        num_basis: int,
        cutoff: float,
        hidden: Sequence[int],
        out_features: int,
        *,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.num_basis = check_int(num_basis, "num_basis")
        if (
            isinstance(cutoff, bool)
            or not isinstance(cutoff, int | float)
            or not cutoff > 0
            or cutoff == float("inf")
        ):
            raise ValueError(f"cutoff must be a positive finite number, got {cutoff!r}")
        self.cutoff = float(cutoff)
        if isinstance(hidden, int | str) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of ints, got {hidden!r}")
        widths = [check_int(h, f"hidden[{i}]") for i, h in enumerate(hidden)]
        self.out_features = check_int(out_features, "out_features")
        self.dtype = check_dtype(dtype, "dtype", allow_none=True)
        param_dtype = check_dtype(param_dtype, "param_dtype", allow_none=False)
        sizes = [num_basis, *widths, out_features]
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, param_dtype=param_dtype, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )

    def __call__(self, r: jax.Array) -> jax.Array:
        """``r``: distances ``(*batch,)`` -> weights ``(*batch, out_features)``."""
        r = jnp.asarray(r)
        if not jnp.issubdtype(r.dtype, jnp.floating):
            raise TypeError(f"RadialMLP: r must be floating point, got {r.dtype}")
        dtype = self.dtype or r.dtype
        r = r.astype(dtype)
        env = smooth_cutoff(r, self.cutoff)[..., None]
        h = bessel_basis(r, self.num_basis, self.cutoff) * env
        for i, layer in enumerate(self.layers):
            assert layer.bias is not None  # nnx.Linear(use_bias=True)
            b = layer.bias[...].astype(dtype)
            h = jnp.einsum("...i,io->...o", h, layer.kernel[...].astype(dtype))
            h = h + b.reshape((1,) * (h.ndim - 1) + b.shape)
            if i < len(self.layers) - 1:
                h = jax.nn.silu(h)
        return h * env
