"""Gaunt tensor products (Luo et al., ICLR 2024): products of irreps computed as
products of spherical functions in the 2D Fourier basis, side by side with
e3nn-jax's Clebsch–Gordan products.

``method="auto"`` is :func:`choose_method`: on CPU, the method fastest in the
table measured by ``python -m experiments bench_tensor_products
--write-cost-model``; on a backend without a measured table (GPU, TPU), the exact
``"s2grid"`` product. Every method gives the same result to float rounding.
The s2grid product's layout and blocking are :func:`planned_s2grid`: on CPU the
fastest of a few candidates, timed once per shape and machine and remembered
(:func:`set_s2grid_planning` turns the timing off or moves its file).

Normalisation (``normalization=``) and e3nn-jax's names — an input ``c`` means the
function ``f(x) = Σ_lm c_lm Y_lm(x)``:

======================  ===================================  ==========================================
eqjax ``normalization``  harmonics ``Y`` (e3nn-jax)            same function on an e3nn ``S2grid``
======================  ===================================  ==========================================
``"component"``          ``e3nn.spherical_harmonics(...,       ``e3nn.to_s2grid(c, ...,
(default)                normalization="component")``:         normalization="integral")``
                         ``Σ_m Y_lm(x)² = 2l+1``, ``Y_00 = 1``
``"integral"``           ``normalization="integral"``:         ``to_s2grid(c, ..., "integral") / √(4π)``
                         ``∫ Y_i Y_j dΩ = δ_ij`` (``√(4π)``
                         times smaller)
(none)                   ``normalization="norm"``:             ``to_s2grid(c, ..., "component")`` and
                         ``Σ_m Y_lm(x)² = 1``                  ``"norm"`` equal ``"integral"`` grids of
                                                               ``c_l / √((2l+1)(L+1))`` and ``c_l / √(L+1)``
                                                               (``L``: the input's lmax): rescale first
======================  ===================================  ==========================================

With unit-variance inputs (``e3nn.normal``, the irreps "component" convention)
``"component"`` keeps products at unit scale (measured RMS 0.4 after the first
layer of ``examples/rmd17_potential.py``); ``"integral"`` shrinks each product by
``√(4π)``. Tested in ``tests/tensor_products/test_issue12.py``."""

from ._gaunt import METHODS as METHODS
from ._gaunt import SignalIrreps as SignalIrreps
from ._gaunt import gaunt_many_body as gaunt_many_body
from ._gaunt import gaunt_power as gaunt_power
from ._gaunt import gaunt_product as gaunt_product
from ._gaunt import gaunt_self_interaction as gaunt_self_interaction
from ._gaunt import gaunt_tensor_product as gaunt_tensor_product
from ._gaunt import gaunt_vector_product as gaunt_vector_product
from ._gaunt import signal_irreps as signal_irreps
from ._plan import choose_method as choose_method
from ._plan import planned_s2grid as planned_s2grid
from ._plan import set_s2grid_planning as set_s2grid_planning
from ._radial import bessel_basis as bessel_basis
from ._radial import smooth_cutoff as smooth_cutoff
from ._tables import fourier_to_sh as fourier_to_sh
from ._tables import gaunt_coefficients as gaunt_coefficients
from ._tables import real_spherical_harmonics as real_spherical_harmonics
from ._tables import sh_to_fourier as sh_to_fourier

__all__ = [
    "METHODS",
    "SignalIrreps",
    "bessel_basis",
    "choose_method",
    "fourier_to_sh",
    "gaunt_coefficients",
    "gaunt_many_body",
    "gaunt_power",
    "gaunt_product",
    "gaunt_self_interaction",
    "gaunt_tensor_product",
    "gaunt_vector_product",
    "planned_s2grid",
    "real_spherical_harmonics",
    "set_s2grid_planning",
    "sh_to_fourier",
    "signal_irreps",
    "smooth_cutoff",
]
