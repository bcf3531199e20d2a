"""Orbax checkpoints of a training run, verified by a manifest before loading."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

MANIFEST = "eqjax_manifest.json"
SKIPPED = "_skipped"


class CheckpointMismatchError(ValueError):
    """A checkpoint holds a different model or optimiser than the run restoring it."""


def fingerprint(tree: Any) -> str:
    """A hash of a pytree's structure, leaf shapes and dtypes (not its values):
    two runs of the same model and optimiser agree, any other pair differs."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    text = [str(treedef)] + [
        f"{jax.tree_util.keystr(p)}:{np.shape(x)}:{_dtype(x)}" for p, x in leaves
    ]
    return hashlib.sha256("\n".join(text).encode()).hexdigest()[:16]


def _dtype(x) -> str:
    return str(x.dtype) if hasattr(x, "dtype") else str(np.result_type(x))


def describe(tree: Any, limit: int = 6) -> str:
    """The first ``limit`` leaves of a pytree as ``path shape dtype`` lines."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    out = [
        f"{jax.tree_util.keystr(p)} {np.shape(x)} {_dtype(x)}"
        for p, x in leaves[:limit]
    ]
    return "; ".join(out) + (
        f"; ... ({len(leaves)} leaves)" if len(leaves) > limit else ""
    )


def _hash_files(step_dir: Path) -> dict[str, list]:
    files = {}
    for root, _dirs, names in os.walk(step_dir):
        for name in sorted(names):
            path = Path(root) / name
            rel = str(path.relative_to(step_dir))
            if rel == MANIFEST:
                continue
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            files[rel] = [path.stat().st_size, h.hexdigest()]
    return dict(sorted(files.items()))


class Checkpointer:
    """Saves and restores ``(state pytree, JSON metadata)`` pairs per step with
    Orbax, asynchronously where Orbax allows, keeping the newest ``keep``.

    A step counts as complete only once its manifest (size and SHA-256 of
    every file, written after Orbax finished the step) exists and matches the
    files; :meth:`restore_latest` walks from the newest step back, warns about
    and moves aside (to ``<dir>/_skipped/``) every step that is incomplete or
    whose files changed, and never loads one.

    Args:
      directory: checkpoint folder (created).
      keep: how many complete checkpoints to keep.
      asynchronous: let Orbax write in a background thread (the next save, or
        :meth:`close`, waits for it).
    """

    def __init__(
        self, directory: str | os.PathLike, *, keep: int = 3, asynchronous: bool = True
    ):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory).absolute()
        self.keep, self.asynchronous = keep, asynchronous
        self._pending: int | None = None
        self._closed = False
        self._remove_unfinished_saves()
        self._manager = self._new_manager()

    def _remove_unfinished_saves(self) -> None:
        """Delete Orbax's temporary step folders (``<step>.orbax-checkpoint-tmp*``:
        a save that a kill interrupted) once, synchronously, on process 0. Orbax's
        own ``cleanup_tmp_directories`` does this in a background thread per
        manager, and the manager made again in :meth:`restore_latest` raced the
        first one's thread on the same folder (``FileNotFoundError`` on resume)."""
        if jax.process_index() == 0 and self.directory.is_dir():
            for p in self.directory.iterdir():
                if ".orbax-checkpoint-tmp" in p.name:
                    shutil.rmtree(p, ignore_errors=True)
        _barrier("eqjax_remove_unfinished")

    def _new_manager(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=self.keep,
                create=True,
                cleanup_tmp_directories=False,  # done once in __init__
                enable_async_checkpointing=self.asynchronous,
            ),
        )

    def _finish_pending(self) -> None:
        self._manager.wait_until_finished()
        if self._pending is not None:
            step_dir = self.directory / str(self._pending)
            if jax.process_index() == 0 and step_dir.is_dir():
                tmp = step_dir / (MANIFEST + ".tmp")
                tmp.write_text(
                    json.dumps({"step": self._pending, "files": _hash_files(step_dir)})
                )
                os.replace(tmp, step_dir / MANIFEST)
            self._pending = None
            _barrier("eqjax_manifest")

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Start saving ``state`` (arrays) and ``meta`` (JSON) as ``step``."""
        self._finish_pending()
        if step in self._manager.all_steps():
            return  # already saved (e.g. the final step of a resumed run)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )
        self._pending = step

    def wait(self) -> None:
        """Block until the last save is complete and its manifest written."""
        self._finish_pending()

    def close(self) -> None:
        """Finish the pending save and release Orbax' threads (idempotent)."""
        if self._closed:
            return
        self._finish_pending()
        self._manager.close()
        self._closed = True

    def steps(self) -> list[int]:
        """Step numbers present on disk (complete or not), newest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            (
                int(p.name)
                for p in self.directory.iterdir()
                if p.name.isdigit() and p.is_dir()
            ),
            reverse=True,
        )

    def _verify(self, step: int) -> str | None:
        """``None`` when ``step`` is complete and intact, else the reason."""
        step_dir = self.directory / str(step)
        man = step_dir / MANIFEST
        if not man.exists():
            return "no manifest (the save did not finish)"
        try:
            want = json.loads(man.read_text())["files"]
        except (OSError, ValueError, KeyError) as e:
            return f"unreadable manifest ({e})"
        have = _hash_files(step_dir)
        if have != want:
            bad = sorted(set(want) ^ set(have)) or [
                k for k in want if want[k] != have.get(k)
            ]
            return f"files missing or changed since the save: {bad[:4]}"
        return None

    def _skip(self, step: int, reason: str) -> None:
        warnings.warn(
            f"checkpoint {self.directory / str(step)} skipped: {reason}",
            RuntimeWarning,
            stacklevel=3,
        )
        _barrier(f"eqjax_skip_{step}_pre")
        if jax.process_index() == 0:
            dest = self.directory / SKIPPED / f"{step}-{int(time.time())}"
            dest.parent.mkdir(exist_ok=True)
            shutil.move(str(self.directory / str(step)), str(dest))
        _barrier(f"eqjax_skip_{step}")

    def restore_latest(
        self, abstract_state: Any, expected_fingerprint: str
    ) -> tuple[Any, dict] | None:
        """The newest complete checkpoint as ``(state, meta)``, or ``None``.

        Args:
          abstract_state: pytree of ``jax.ShapeDtypeStruct`` (with shardings)
            describing the state to restore into.
          expected_fingerprint: :func:`fingerprint` of the run's state.

        Raises:
          CheckpointMismatchError: if the newest complete checkpoint belongs to
            another model or optimiser (its fingerprint differs).
        """
        self._finish_pending()
        found = None
        for step in self.steps():
            reason = self._verify(step)
            if reason is None:
                try:
                    meta = json.loads(
                        (self.directory / str(step) / "meta" / "metadata").read_text()
                    )
                except (OSError, ValueError) as e:
                    reason = f"unreadable metadata ({e})"
                else:
                    if meta.get("fingerprint") != expected_fingerprint:
                        raise CheckpointMismatchError(
                            f"checkpoint {self.directory / str(step)} was written by "
                            f"another model or optimiser (fingerprint "
                            f"{meta.get('fingerprint')}, {meta.get('describe', '?')}); "
                            f"this run has {expected_fingerprint} "
                            f"({describe(abstract_state)}). Use another --checkpoint-dir "
                            "or start without --resume."
                        )
                    found = step
                    break
            self._skip(step, reason)
        self._manager.close()
        self._manager = self._new_manager()
        if found is None:
            return None
        out = self._manager.restore(
            found,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                meta=ocp.args.JsonRestore(),
            ),
        )
        return out["state"], dict(out["meta"])


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
