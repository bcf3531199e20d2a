import experiments.__main__ as cli
from experiments import tour


def test_list_names_tour(capsys):
    assert cli.main(["list"]) == 0
    assert "tour" in capsys.readouterr().out


def test_tour_quick_writes_table(capsys):
    assert tour.main(["--quick", "--filter", "groups.SO3"]) == 0
    out = capsys.readouterr().out
    assert "groups.SO3.act" in out and "| yes |" in out
    assert (tour.results_dir("tour") / "tour_quick.md").exists()


def test_unknown_experiment_is_an_error():
    assert cli.main(["no_such_experiment"]) == 2
