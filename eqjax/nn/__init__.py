"""Flax NNX modules: parameters around the pure functions of eqjax."""

from ._blocks import Gate as Gate
from ._blocks import Linear as Linear
from ._blocks import RadialMLP as RadialMLP
from ._blocks import gate_irreps as gate_irreps
from ._bodies import APEN as APEN
from ._bodies import SET as SET
from ._bodies import ArtEq as ArtEq
from ._frames import FrameAveraging as FrameAveraging
from ._gaunt import GauntManyBody as GauntManyBody
from ._gaunt import GauntTensorProduct as GauntTensorProduct
from ._geometric import EGNN as EGNN
from ._geometric import PONITA as PONITA
from ._geometric import ConvNeXtBlock as ConvNeXtBlock
from ._geometric import EGNNLayer as EGNNLayer
from ._geometric import EGNNOutput as EGNNOutput
from ._graphs import GIN as GIN
from ._graphs import IGN as IGN
from ._graphs import PPGN as PPGN
from ._graphs import SPE as SPE
from ._graphs import SPEN as SPEN
from ._graphs import IGNLinear as IGNLinear
from ._lcm import GRUAggregator as GRUAggregator
from ._lcm import LCMAggregator as LCMAggregator
from ._weights import EBVHead as EBVHead
from ._weights import FixedBasis as FixedBasis
from ._weights import FixedFrameHead as FixedFrameHead

__all__ = [
    "APEN",
    "ArtEq",
    "ConvNeXtBlock",
    "EBVHead",
    "EGNN",
    "EGNNLayer",
    "EGNNOutput",
    "PONITA",
    "PPGN",
    "FixedBasis",
    "FixedFrameHead",
    "FrameAveraging",
    "GIN",
    "GRUAggregator",
    "GauntManyBody",
    "Gate",
    "GauntTensorProduct",
    "IGN",
    "IGNLinear",
    "LCMAggregator",
    "SPE",
    "SPEN",
    "SET",
    "Linear",
    "RadialMLP",
    "gate_irreps",
]
