import experiments.__main__ as cli
from experiments import tour


def test_list_names_tour(capsys):
    assert cli.main(["list"]) == 0
    assert "tour" in capsys.readouterr().out


def test_tour_filtered_writes_its_own_table(capsys):
    """A filtered tour (two spawned workers) writes ``tour_filtered``, never the
    committed full table."""
    committed = tour.results_dir("tour") / "tour.md"
    before = committed.read_text() if committed.exists() else None
    assert tour.main(["--filter", "groups.act_", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "groups.act_irreps" in out and "groups.act_graph" in out and "| yes |" in out
    assert (tour.results_dir("tour") / "tour_filtered.md").exists()
    assert (committed.read_text() if committed.exists() else None) == before


def test_tour_rejects_bad_options(capsys):
    assert tour.main(["--filter", "no_such_transform"]) == 2
    try:
        tour.main(["--workers", "0"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("--workers 0 accepted")


def test_unknown_experiment_is_an_error():
    assert cli.main(["no_such_experiment"]) == 2
