"""Flax NNX modules: parameters around the pure functions of eqjax."""

from ._blocks import Gate as Gate
from ._blocks import Linear as Linear
from ._blocks import RadialMLP as RadialMLP
from ._blocks import gate_irreps as gate_irreps
from ._frames import FrameAveraging as FrameAveraging
from ._gaunt import GauntManyBody as GauntManyBody
from ._gaunt import GauntTensorProduct as GauntTensorProduct
from ._lcm import GRUAggregator as GRUAggregator
from ._lcm import LCMAggregator as LCMAggregator

__all__ = [
    "FrameAveraging",
    "GRUAggregator",
    "GauntManyBody",
    "Gate",
    "GauntTensorProduct",
    "LCMAggregator",
    "Linear",
    "RadialMLP",
    "gate_irreps",
]
