"""Flax NNX modules: parameters around eqjax's pure functions."""

from ._gaunt import GauntManyBody as GauntManyBody
from ._gaunt import GauntTensorProduct as GauntTensorProduct

__all__ = ["GauntManyBody", "GauntTensorProduct"]
