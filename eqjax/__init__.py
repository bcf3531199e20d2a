"""eqjax: symmetry in deep learning for JAX.

Groups and their actions (:mod:`eqjax.groups`) and the symmetry-testing harness
(:mod:`eqjax.testing`); later areas (tensor products, frames, reductions) build on
them, and :mod:`eqjax.nn` wraps them as Flax NNX modules.
"""

from . import groups as groups
from . import tensor_products as tensor_products
from . import testing as testing

__version__ = "0.1.0"
__all__ = ["groups", "tensor_products", "testing"]
