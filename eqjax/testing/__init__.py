"""Public symmetry checks: what eqjax's own tests use, for users' models too.

``equivariance_error``/``assert_equivariant``/``assert_invariant`` measure a
function against sampled group elements; ``eqjax.testing.strategies`` holds the
hypothesis strategies (needs the ``dev`` extra); :func:`registered` lists every
public equivariant transform with its group, actions and inputs.
"""

from ._equivariance import Sides as Sides
from ._equivariance import assert_equivariant as assert_equivariant
from ._equivariance import assert_invariant as assert_invariant
from ._equivariance import assert_sides_close as assert_sides_close
from ._equivariance import cast_floating as cast_floating
from ._equivariance import default_tolerance as default_tolerance
from ._equivariance import equivariance_error as equivariance_error
from ._equivariance import equivariance_errors as equivariance_errors
from ._equivariance import equivariance_sides as equivariance_sides
from ._equivariance import sides_from_outputs as sides_from_outputs
from ._equivariance import transformed_inputs as transformed_inputs
from ._fixtures import DEGENERATE_CLOUDS as DEGENERATE_CLOUDS
from ._fixtures import degenerate_cloud as degenerate_cloud
from ._fixtures import random_cloud as random_cloud
from ._fixtures import random_graph as random_graph
from ._registry import RegistryError as RegistryError
from ._registry import Transform as Transform
from ._registry import built_once as built_once
from ._registry import discover_areas as discover_areas
from ._registry import registered as registered

__all__ = [
    "DEGENERATE_CLOUDS",
    "RegistryError",
    "Sides",
    "Transform",
    "assert_equivariant",
    "assert_invariant",
    "assert_sides_close",
    "built_once",
    "cast_floating",
    "default_tolerance",
    "discover_areas",
    "degenerate_cloud",
    "equivariance_error",
    "equivariance_errors",
    "equivariance_sides",
    "random_cloud",
    "random_graph",
    "registered",
    "sides_from_outputs",
    "transformed_inputs",
]
