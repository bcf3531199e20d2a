"""eqjax: symmetry in deep learning for JAX.

Groups and their actions (:mod:`eqjax.groups`), the symmetry-testing harness
(:mod:`eqjax.testing`), Gaunt tensor products (:mod:`eqjax.tensor_products`),
frame averaging (:mod:`eqjax.frames`) and learnable commutative-monoid reductions
(:mod:`eqjax.reductions`); :mod:`eqjax.nn` wraps them as Flax NNX modules and is
imported on first use (``eq.nn``).
"""

import importlib as _importlib

from . import frames as frames
from . import groups as groups
from . import reductions as reductions
from . import tensor_products as tensor_products
from . import testing as testing

__version__ = "0.1.0"
__all__ = ["frames", "groups", "nn", "reductions", "tensor_products", "testing"]


def __getattr__(name):
    if name == "nn":
        return _importlib.import_module(".nn", __name__)
    raise AttributeError(f"module 'eqjax' has no attribute {name!r}")
