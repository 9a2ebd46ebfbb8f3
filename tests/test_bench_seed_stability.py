"""The claim-by-claim comparison of two seeds' verdicts (experiments._report.verdict_table),
used by benchmarks/seed_stability.py and ``experiments compare``."""

from __future__ import annotations

import pytest

from experiments._report import verdict_table


def _record(*holds, measured=1.0):
    return {"checks": [{"claim": f"c{i}", "holds": h, "measured": measured}
                       for i, h in enumerate(holds)]}


def test_a_verdict_that_flips_with_the_seed_is_listed():
    rows, n, agree = verdict_table({0: _record(True, True, False), 1: _record(True, False, False)})
    assert (n, agree) == (3, 2)
    assert rows == [["c1", "yes / NO", "1.0 / 1.0"]]
    rows, n, agree = verdict_table({0: _record(True, False), 1: _record(True, False)})
    assert rows == [] and agree == n == 2


def test_seeds_stating_different_claims_are_refused():
    with pytest.raises(ValueError, match="different numbers of claims"):
        verdict_table({0: _record(True), 1: _record(True, True)})
