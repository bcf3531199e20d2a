"""Flax NNX modules: parameters around eqjax's pure functions."""

from ._frames import FrameAveraging as FrameAveraging

__all__ = ["FrameAveraging"]
