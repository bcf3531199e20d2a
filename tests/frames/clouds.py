"""A registry of degenerate point clouds from ideal geometry (Å), for the frame
tests: ``CLOUDS[name] -> (n, 3)`` NumPy arrays, and :func:`padded` to stack them
as masked clouds of one shape (one compilation for all of them)."""

import itertools

import numpy as np

PHI = (1 + 5**0.5) / 2


def _ring(k, r, z=0.0, phase=0.0):
    a = 2 * np.pi * np.arange(k) / k + phase
    return np.stack([r * np.cos(a), r * np.sin(a), np.full(k, z)], -1)


def _tetrahedron():
    return np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)


def _octahedron():
    e = np.eye(3)
    return np.concatenate([e, -e])


def _cube():
    return np.array(list(itertools.product((-1.0, 1.0), repeat=3)))


def _icosahedron():
    pts = []
    for s1, s2 in itertools.product((-1, 1), repeat=2):
        pts += [[0, s1, s2 * PHI], [s1, s2 * PHI, 0], [s2 * PHI, 0, s1]]
    return np.array(pts, float)


def _dodecahedron():
    pts = [list(p) for p in itertools.product((-1.0, 1.0), repeat=3)]
    for s1, s2 in itertools.product((-1, 1), repeat=2):
        a, b = s1 / PHI, s2 * PHI
        pts += [[0, a, b], [a, b, 0], [b, 0, a]]
    return np.array(pts, float)


def _methane():
    return np.concatenate([[[0.0, 0, 0]], 1.09 / 3**0.5 * _tetrahedron()])


def _benzene():
    return np.concatenate([_ring(6, 1.39), _ring(6, 2.47)])


def _sf6():
    return np.concatenate([[[0.0, 0, 0]], 1.56 * _octahedron()])


def _ferrocene():
    """Fe between two staggered (D5d) cyclopentadienyl rings."""
    rings = [
        _ring(5, r, z, phase)
        for z, phase in ((1.66, 0.0), (-1.66, np.pi / 5))
        for r in (1.22, 2.29)
    ]
    return np.concatenate([[[0.0, 0, 0]], *rings])


def _line(*zs):
    return np.array([[0.0, 0, z] for z in zs])


def _generic():
    return np.random.default_rng(0).normal(size=(9, 3))


def _planar():
    x = np.random.default_rng(1).normal(size=(8, 3))
    x[:, 2] = 0
    return x


def _collinear():
    t = np.random.default_rng(2).normal(size=7)
    return t[:, None] * np.array([[0.3, -0.5, 0.8]])


CLOUDS = {
    "generic": _generic,
    "planar": _planar,
    "collinear": _collinear,
    "coincident": lambda: np.tile([[0.4, -1.1, 0.7]], (5, 1)),
    "two_coincident": lambda: np.tile([[0.4, -1.1, 0.7]], (2, 1)),
    "all_zero": lambda: np.zeros((4, 3)),
    "tetrahedron": _tetrahedron,
    "cube": _cube,
    "octahedron": _octahedron,
    "icosahedron": _icosahedron,
    "dodecahedron": _dodecahedron,
    "triangular_prism": lambda: np.concatenate([_ring(3, 1, -0.8), _ring(3, 1, 0.8)]),
    "pentagonal_prism": lambda: np.concatenate([_ring(5, 1, -1), _ring(5, 1, 1)]),
    "square_antiprism": lambda: np.concatenate(
        [_ring(4, 1, -0.6), _ring(4, 1, 0.6, np.pi / 4)]
    ),
    "pentagonal_antiprism": lambda: np.concatenate(
        [_ring(5, 1, -0.5), _ring(5, 1, 0.5, np.pi / 5)]
    ),
    "methane": _methane,
    "benzene": _benzene,
    "sf6": _sf6,
    "ferrocene": _ferrocene,
    "co2": lambda: _line(-1.16, 0.0, 1.16),
    "acetylene": lambda: _line(-1.66, -0.60, 0.60, 1.66),
    "diatomic": lambda: _line(-0.55, 0.55),
}
# exactly degenerate covariance spectra (plain PCA frames are arbitrary there)
DEGENERATE = sorted(set(CLOUDS) - {"generic", "planar"})
N_MAX = max(len(f()) for f in CLOUDS.values())  # 21 (ferrocene)


def padded(names, pose=None, pad_value=3.0, n_max=N_MAX):
    """``(points (C, N_MAX, 3), mask (C, N_MAX))`` of the named clouds, each moved
    by ``pose = (R (3, 3), t (3,))`` if given; padding points sit at
    ``pad_value`` (frames and the test backbones must ignore them)."""
    pts = np.full((len(names), n_max, 3), pad_value)
    mask = np.zeros((len(names), n_max), bool)
    for i, name in enumerate(names):
        x = CLOUDS[name]()
        if pose is not None:
            x = x @ pose[0].T + pose[1]
        pts[i, : len(x)], mask[i, : len(x)] = x, True
    return pts, mask
