"""Flax NNX modules: parameters around the pure functions of eqjax."""

from ._frames import FrameAveraging as FrameAveraging
from ._lcm import GRUAggregator as GRUAggregator
from ._lcm import LCMAggregator as LCMAggregator

__all__ = ["FrameAveraging", "GRUAggregator", "LCMAggregator"]
