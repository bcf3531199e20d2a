"""``FrameAveraging``: an NNX module that makes its backbone invariant/equivariant."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flax import nnx

from ..frames import frame_average, stochastic_frame_average

if TYPE_CHECKING:
    from ..groups import Group


class FrameAveraging(nnx.Module):
    """Frame averaging around any backbone (Puny et al., ICLR 2022).

    ``FrameAveraging(backbone, frame, act_in, act_out)(x, *args)`` equals
    :func:`eqjax.frames.frame_average` of ``backbone`` (the backbone's parameters
    are the module's); with ``num_samples`` it is the unbiased
    :func:`eqjax.frames.stochastic_frame_average` and needs ``key=``, except in
    ``deterministic`` mode (``model.eval()``), which averages over the full frame.

    Args:
      backbone: an ``nnx.Module`` (or any callable) ``backbone(x, *args) -> y``.
      frame: ``frame(x) -> Frame`` (``None`` if frames are passed at call time).
      act_in: action on inputs ``act_in(g, x)``.
      act_out: action on outputs, ``None`` for an invariant model.
      group: the group of the frame elements, for frames that do not carry one
        (``None``: the frame's ``group``).
      inverse: inverse of frame elements (``None``: ``group.inverse``).
      num_samples: if given, sample this many frame elements per call in training.
      deterministic: average over the full frame even with ``num_samples``.
      chunk_size: frame elements per backbone ``vmap`` (``None``, the default: all
        at once); see :func:`eqjax.frames.frame_average`.
      remat: ``jax.checkpoint`` around each backbone call (``True``, ``False``,
        the default, or a checkpoint policy); see
        :func:`eqjax.frames.frame_average`.
      stored_elements: with ``remat``, how many frame elements keep their
        intermediates (default 0); see :func:`eqjax.frames.frame_average`.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> from flax import nnx
      >>> class MLP(nnx.Module):
      ...     def __init__(self, rngs):
      ...         self.l1 = nnx.Linear(15, 16, rngs=rngs)
      ...         self.l2 = nnx.Linear(16, 1, rngs=rngs)
      ...     def __call__(self, x):
      ...         return self.l2(nnx.softplus(self.l1(x.reshape(-1))))
      >>> model = eq.nn.FrameAveraging(MLP(nnx.Rngs(0)),
      ...     eq.frames.pca_frame(eq.groups.O3),
      ...     act_in=eq.groups.cloud_action(eq.groups.O3))
      >>> model(jax.random.normal(jax.random.key(0), (5, 3))).shape
      (1,)
    """

    def __init__(
        self,
        backbone: Callable[..., Any],
        frame: Callable[[Any], Any] | None,
        act_in: Callable[[Any, Any], Any],
        act_out: Callable[[Any, Any], Any] | None = None,
        *,
        group: Group | None = None,
        inverse: Callable[[Any], Any] | None = None,
        num_samples: int | None = None,
        deterministic: bool = False,
        chunk_size: int | None = None,
        remat: bool | Callable[..., Any] = False,
        stored_elements: int = 0,
    ):
        self.backbone = backbone
        self.frame = frame
        self.act_in = act_in
        self.act_out = act_out
        self.group = group
        self.inverse = inverse
        self.num_samples = None if num_samples is None else int(num_samples)
        self.deterministic = deterministic
        self.chunk_size = chunk_size
        self.remat = remat
        self.stored_elements = stored_elements

    def __call__(self, x, *args, frame=None, key=None):
        kw: dict[str, Any] = dict(
            act_in=self.act_in,
            act_out=self.act_out,
            group=self.group,
            inverse=self.inverse,
            chunk_size=self.chunk_size,
            remat=self.remat,
            stored_elements=self.stored_elements,
        )
        if self.num_samples is not None and not self.deterministic:
            if key is None:
                raise ValueError(
                    "FrameAveraging with num_samples needs key= (or call model.eval())"
                )
            f = stochastic_frame_average(
                self.backbone, self.frame, num_samples=self.num_samples, **kw
            )
            return f(x, *args, key=key, frame=frame)
        return frame_average(self.backbone, self.frame, **kw)(x, *args, frame=frame)
