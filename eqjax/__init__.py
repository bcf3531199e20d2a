"""eqjax: symmetry in deep learning for JAX.

Groups and their actions (:mod:`eqjax.groups`), the symmetry-testing harness
(:mod:`eqjax.testing`), and one subpackage per area of the field (Gaunt tensor
products, frame averaging, commutative-monoid reductions, ...); :mod:`eqjax.nn`
wraps them as Flax NNX modules. Every subpackage not imported here is imported on
first use (``eq.nn``, ``eq.datasets``, a new area's ``eq.<area>``), so adding an area
never edits this file.
"""

import importlib as _importlib
import pkgutil as _pkgutil
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import frames as frames
from . import groups as groups
from . import reductions as reductions
from . import tensor_products as tensor_products
from . import testing as testing

if _TYPE_CHECKING:  # imported on first use at run time (Flax is heavy)
    from . import nn as nn

__version__ = "0.1.0"
_SUBPACKAGES = sorted(
    m.name
    for m in _pkgutil.iter_modules(__path__)
    if m.ispkg and not m.name.startswith("_")
)
__all__ = list(_SUBPACKAGES)  # pyright: ignore[reportUnsupportedDunderAll]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eqjax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
