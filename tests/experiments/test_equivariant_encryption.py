import csv

from experiments import equivariant_encryption


def test_quick_run_exact_and_the_attack_gains_with_traffic(tmp_path):
    assert equivariant_encryption.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    exact = list(csv.DictReader(open(tmp_path / "quick_exact.csv")))[0]
    assert float(exact["max |decrypted - plain|"]) < 1e-5
    assert exact["round trip"] == "True"
    rows = list(csv.DictReader(open(tmp_path / "quick_attack.csv")))
    assert [int(r["traffic tokens"]) for r in rows] == [100, 3000]
    small, large = rows
    assert float(large["freq+hill: traffic decrypted"]) > 0.5
    assert float(large["freq+hill: vocab recovered"]) >= float(
        small["freq+hill: vocab recovered"]
    )
