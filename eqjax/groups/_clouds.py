"""The action of a point group on point clouds ``(..., n, d)``."""

from __future__ import annotations

import jax

from ._base import Action, Group


def cloud_action(group: Group) -> Action:
    """The action of ``group`` on point clouds: ``g·X`` moves every point of ``X``.

    ``group.act`` acts on points ``(..., d)`` and aligns element batch axes with
    the *leading* axes of the points, so one element acts on a cloud ``(n, d)``
    directly, but a batch of elements ``(B,)`` does not broadcast against clouds
    ``(B, n, d)``. The returned action maps ``group.act`` over the point axis
    ``-2`` with the element held fixed, so element ``b`` acts on every point of
    cloud ``b``. Works for any group whose ``act`` acts on points (O(d), SO(d),
    E(d), SE(d), GL⁺(d), Aff(d), rotations about an axis, ...).

    Args:
      group: a :class:`Group` acting on points ``(..., d)``.

    Returns:
      ``act(g, x)`` for elements ``g`` with batch axes ``(*batch)`` and clouds
      ``x (*batch, n, d)``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> act = eq.groups.cloud_action(eq.groups.E3)
      >>> g = eq.groups.E3.sample(jax.random.key(0), (2,))
      >>> act(g, jnp.zeros((2, 4, 3))).shape
      (2, 4, 3)
    """
    if not isinstance(group, Group):
        raise TypeError(f"cloud_action expects a Group, got {type(group).__name__}")

    def act(g, x):
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(
                f"cloud_action({group.name}): expects clouds of shape (..., n, d); "
                f"got shape {getattr(x, 'shape', None)}"
            )
        return jax.vmap(lambda p: group.act(g, p), in_axes=-2, out_axes=-2)(x)

    return act
