"""Flax NNX modules: parameters around the pure functions of eqjax."""

from ._frames import FrameAveraging as FrameAveraging
from ._gaunt import GauntManyBody as GauntManyBody
from ._gaunt import GauntTensorProduct as GauntTensorProduct
from ._lcm import GRUAggregator as GRUAggregator
from ._lcm import LCMAggregator as LCMAggregator

__all__ = [
    "FrameAveraging",
    "GRUAggregator",
    "GauntManyBody",
    "GauntTensorProduct",
    "LCMAggregator",
]
