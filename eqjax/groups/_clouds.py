"""The action of a point group on point clouds ``(..., n, d)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

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

    Masked clouds are first-class: ``act(g, (points, mask))`` returns
    ``(g·points, mask)`` (the mask is invariant; padding points move too, and
    frames and backbones ignore them), the input format of
    :func:`eqjax.frames.pca_frame` and the other point-cloud frames. For E(d)
    this moves *positions*; act on per-point vectors (forces) with
    :func:`act_vectors`.

    Args:
      group: a :class:`Group` acting on points ``(..., d)``.

    Returns:
      ``act(g, x)`` for elements ``g`` with batch axes ``(*batch)`` and clouds
      ``x (*batch, n, d)``, or masked clouds ``(x, mask (*batch, n) bool)``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> act = eq.groups.cloud_action(eq.groups.E3)
      >>> g = eq.groups.E3.sample(jax.random.key(0), (2,))
      >>> act(g, jnp.zeros((2, 4, 3))).shape
      (2, 4, 3)
      >>> points, mask = act(g, (jnp.zeros((2, 4, 3)), jnp.ones((2, 4), bool)))
      >>> points.shape, mask.shape
      ((2, 4, 3), (2, 4))
    """
    if not isinstance(group, Group):
        raise TypeError(f"cloud_action expects a Group, got {type(group).__name__}")

    def act(g, x):
        if isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError(
                    f"cloud_action({group.name}): a masked cloud is a pair "
                    f"(points, mask); got a tuple of {len(x)}"
                )
            points, mask = x
            mask_shape = getattr(mask, "shape", None)
            if mask_shape != getattr(points, "shape", (None,))[:-1]:
                raise ValueError(
                    f"cloud_action({group.name}): mask of shape {mask_shape} does "
                    f"not match points of shape {getattr(points, 'shape', None)}"
                )
            if getattr(mask, "dtype", None) != jnp.bool_:
                raise TypeError(
                    f"cloud_action({group.name}): mask must be boolean, got dtype "
                    f"{getattr(mask, 'dtype', type(mask).__name__)}"
                )
            return act(g, points), mask
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(
                f"cloud_action({group.name}): expects clouds of shape (..., n, d); "
                f"got shape {getattr(x, 'shape', None)}"
            )
        return jax.vmap(lambda p: group.act(g, p), in_axes=-2, out_axes=-2)(x)

    return act
