"""eqjax: symmetry in deep learning for JAX.

Groups and their actions (:mod:`eqjax.groups`), the symmetry-testing harness
(:mod:`eqjax.testing`), Gaunt tensor products (:mod:`eqjax.tensor_products`),
frame averaging (:mod:`eqjax.frames`) and learnable commutative-monoid reductions
(:mod:`eqjax.reductions`); :mod:`eqjax.nn` wraps them as Flax NNX modules and is
imported on first use (``eq.nn``).
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import frames as frames
from . import groups as groups
from . import reductions as reductions
from . import tensor_products as tensor_products
from . import testing as testing

if _TYPE_CHECKING:  # imported on first use at run time (Flax is heavy)
    from . import nn as nn

__version__ = "0.1.0"
__all__ = ["frames", "groups", "nn", "reductions", "tensor_products", "testing"]


def __getattr__(name):
    if name == "nn":
        return _importlib.import_module(".nn", __name__)
    raise AttributeError(f"module 'eqjax' has no attribute {name!r}")
