"""Every training experiment runs on eqjax.training and takes its flags.

Fast tier (the root conftest keeps this file out of the slow tier that the rest of
``tests/experiments/`` is in): ``--help`` of each converted experiment lists the
harness' flags, and tiny runs of ``mds_shapes`` and ``substructure_counts`` with
``--checkpoint-dir`` write checkpoints (one folder per model) that a second run
with ``--resume`` continues from (for ``mds_shapes``: to the same result as an
uninterrupted run). About 7 s in all (cold compilation cache, 2 shared cores);
put anything slower under ``@pytest.mark.slow``.
"""

import csv
import importlib

import pytest

from experiments.__main__ import main as experiments_main

TRAINING_EXPERIMENTS = (
    "nbody",
    "md17_gaunt",
    "second_minimum",
    "zinc_like",
    "mds_shapes",
    "substructure_counts",
    "set_control",
    "apen_segmentation",
    "arteq_fitting",
    "rebasin",
    "ebv_heads",
    "neural_collapse",
)
"""The experiments converted to :func:`eqjax.training.fit` so far; add each one
that trains when it is converted."""

HARNESS_FLAGS = ("--devices", "--checkpoint-dir", "--resume")


@pytest.mark.parametrize("name", TRAINING_EXPERIMENTS)
def test_help_lists_the_harness_flags(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        experiments_main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    missing = [f for f in HARNESS_FLAGS if f not in out]
    assert not missing, f"{name} --help lacks {missing}"


def _steps(folder):
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _rows(folder):
    with open(folder / "quick.csv") as f:
        return list(csv.DictReader(f))


def test_mds_shapes_checkpoints_then_resumes(tmp_path):
    mds = importlib.import_module("experiments.mds_shapes")
    ck = tmp_path / "ck"
    # no budget (--budget-s 0): a step count, so the resumed run is reproducible
    base = ["--quick", "--models", "pointnet", "--budget-s", "0", "--no-progress"]

    def run(out, *flags):
        assert mds.main([*base, "--results-dir", str(tmp_path / out), *flags]) == 0
        return _rows(tmp_path / out)

    run("first", "--max-steps", "2", "--checkpoint-dir", str(ck))
    assert _steps(ck / "pointnet") == [2]
    resumed = run(
        "resumed", "--max-steps", "4", "--checkpoint-dir", str(ck), "--resume"
    )
    assert _steps(ck / "pointnet") == [2, 4]
    whole = run("whole", "--max-steps", "4")
    assert [r["steps"] for r in resumed] == ["4"]
    acc = ("test acc. (canonical)", "test acc. (moved)")
    assert [resumed[0][k] for k in acc] == [whole[0][k] for k in acc]
    with pytest.raises(ValueError, match="--resume"):  # a used folder is refused
        run("again", "--max-steps", "4", "--checkpoint-dir", str(ck))
    with pytest.raises(ValueError, match="--resume needs --checkpoint-dir"):
        run("bad", "--resume")


def test_substructure_counts_checkpoints_then_resumes(tmp_path):
    sc = importlib.import_module("experiments.substructure_counts")
    ck = tmp_path / "ck"
    base = ["--models", "GIN", "--train", "64", "--val", "32", "--test", "32"]
    base += ["--batch", "32", "--hidden", "8", "--no-progress", "--quick"]

    def run(out, *flags):
        assert sc.main([*base, "--results-dir", str(tmp_path / out), *flags]) == 0
        return _rows(tmp_path / out)

    run("first", "--epochs", "1", "--checkpoint-dir", str(ck))
    assert _steps(ck / "gin") == [2]  # 64 / 32 steps per epoch
    rows = run("resumed", "--epochs", "2", "--checkpoint-dir", str(ck), "--resume")
    assert _steps(ck / "gin") == [2, 4]
    assert [r["model"] for r in rows] == ["GIN"]
