"""The bad-input sweep (issue 12 §5), slow tier: every public callable of the areas
this file asserts on is exercised, and none of their bad inputs gives a silently
wrong answer or an avoidable NaN. Other areas are swept and reported by
``python -m experiments bad_input_sweep`` (counts in
``experiments/results/bad_input_sweep.md``)."""

import pytest

import eqjax as eq
from experiments import bad_input_sweep as sweep

OWNED = ("groups", "testing")


@pytest.mark.slow
def test_sweep_owned_areas_no_silent_answers_and_no_avoidable_nan():
    results = sweep.run(list(OWNED), progress=False)
    names = {c.name for c, _, _ in results}
    for area in OWNED:
        module = getattr(eq, area)
        missing = [
            n
            for n in sweep.public_callables(module)
            if not any(m == n or m.startswith(n + ".") or n in m for m in names)
        ]
        assert not missing, f"{area}: public callables not swept: {missing}"
    bad = [
        (c.area, c.name, c.kind, o, why)
        for c, o, why in results
        if c.area in OWNED and o in ("silent", "nan")
    ]
    assert not bad, bad
    print(sweep.table(results))
