"""Registry discovery: each area's ``_rows.py`` is found with no other edit, and a
missing or broken one is an error naming the area."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eqjax
import eqjax as eq
from eqjax.testing import RegistryError

ROOT = Path(__file__).resolve().parents[2]

DUMMY_ROWS = """
import jax
from eqjax.groups import O3
from eqjax.testing import Transform

ROWS = [
    Transform(
        name="zz_dummy.double",
        fn=lambda x: 2.0 * x,
        group=O3,
        act_in=O3.act,
        act_out=O3.act,
        make_input=lambda key, dtype: jax.random.normal(key, (4, 3), dtype),
    )
]
"""


def _scratch_area(root: Path, rows: str | None, name: str = "zz_dummy") -> Path:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A scratch area."""\n')
    if rows is not None:
        (pkg / "_rows.py").write_text(textwrap.dedent(rows))
    return root


@pytest.fixture
def extra_area_dir(tmp_path, monkeypatch):
    """A directory appended to ``eqjax.__path__``: its packages become areas."""
    monkeypatch.setattr(eqjax, "__path__", [*eqjax.__path__, str(tmp_path)])
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("eqjax.zz_")]:
        del sys.modules[mod]


def test_discovered_areas_are_the_packages_with_rows():
    areas = eq.testing.discover_areas()
    assert areas[0] == "groups"
    assert {"frames", "reductions", "tensor_products"} <= set(areas)
    assert not {"testing", "nn"} & set(areas)
    assert {r.name.split(".")[0] for r in eq.testing.registered()} == set(areas)


def test_new_area_rows_appear_in_registry_and_tour(extra_area_dir, capsys):
    _scratch_area(extra_area_dir, DUMMY_ROWS)
    assert "zz_dummy" in eq.testing.discover_areas()
    names = [r.name for r in eq.testing.registered()]
    assert "zz_dummy.double" in names
    from experiments import tour

    assert tour.main(["--filter", "zz_dummy.", "--workers", "1"]) == 0
    assert "zz_dummy.double" in capsys.readouterr().out


def test_area_without_rows_is_an_error(extra_area_dir):
    _scratch_area(extra_area_dir, None, "zz_norows")
    with pytest.raises(RegistryError, match="zz_norows.*no registry rows"):
        eq.testing.registered()


def test_area_whose_rows_fail_to_import_is_an_error(extra_area_dir):
    _scratch_area(extra_area_dir, "import no_such_module_anywhere\n", "zz_broken")
    with pytest.raises(RegistryError, match="zz_broken.*no_such_module_anywhere"):
        eq.testing.registered()


@pytest.mark.parametrize(
    "bad, match",
    [
        ("ROWS = []\n", "non-empty"),
        ("ROWS = [1]\n", "non-Transform"),
        (DUMMY_ROWS.replace("zz_dummy.double", "other.double"), "must start with"),
    ],
)
def test_malformed_rows_are_errors(extra_area_dir, bad, match):
    _scratch_area(extra_area_dir, bad)
    with pytest.raises(RegistryError, match=match):
        eq.testing.registered()


def test_unknown_area_and_string_argument():
    with pytest.raises(RegistryError, match="unknown areas"):
        eq.testing.registered(["no_such_area"])
    # a bare string is one area, not its characters
    assert {r.name.split(".")[0] for r in eq.testing.registered("frames")} == {"frames"}


def _run_common_tests(tmp_path: Path, rows: str | None, name: str):
    """Run tests/test_common.py in a fresh process whose eqjax has one more area."""
    _scratch_area(tmp_path / "areas", rows, name)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import eqjax\neqjax.__path__.append({str(tmp_path / 'areas')!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    env["EQJAX_AREA_TIMES"] = str(tmp_path / "times.json")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_common.py",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-k",
            name,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_common_tests_pick_up_a_new_area_with_no_edit(tmp_path):
    proc = _run_common_tests(tmp_path, DUMMY_ROWS, "zz_dummy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "passed" in out and "zz_dummy" in (tmp_path / "times.json").read_text()


@pytest.mark.slow
def test_common_tests_fail_naming_an_area_whose_rows_break(tmp_path):
    proc = _run_common_tests(tmp_path, "raise RuntimeError('boom')\n", "zz_broken")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "zz_broken" in out and "boom" in out
