"""The restated claims of deeponet_basis_floor and deeponet_data_size fed violating results:
exactly the claims that should fail do (issue 15: every claim falsifiable)."""

from __future__ import annotations

import numpy as np

from experiments import deeponet_basis_floor as bf
from experiments import deeponet_data_size as dsz


def _basis_results(cfg, shift_units=0.0):
    """Results that satisfy every claim; the population floors sit ``shift_units`` units of the
    reference's last quoted digit above the reference."""
    n_p, ns = len(cfg.p_values), cfg.n_seeds
    floor = np.geomspace(0.5, 1e-3, n_p)
    out = {}
    for f in bf.FAMILIES:
        ref = np.array([bf.REFERENCE_FLOORS[f][p] for p in sorted(bf.REFERENCE_FLOORS[f])])
        unit = 10.0 ** (np.floor(np.log10(ref)) - cfg.reference_digits + 1)
        err = np.repeat((1.5 * floor)[:, None], ns, 1)
        mdl = dict(rel_error_seeds=err, rel_error=err.mean(1), rel_error_se_seeds=0.01 * err,
                   abs_error_seeds=err, mc_rtol=np.full_like(err, 0.01))
        out[f] = dict(pca_floor_test=floor, pod_train_space_floor=floor, joint_abs=floor,
                      population_floor_at_reference_p=ref + shift_units * unit,
                      deeponet=mdl, pod=dict(mdl))
    return out


def test_basis_floor_reference_equality_fails_beyond_one_unit_of_the_last_digit():
    cfg = bf.PRESETS["quick"]
    ok = bf.claims(cfg, _basis_results(cfg, 0.9))
    assert all(c.holds for c in ok), [c.statement for c in ok if not c.holds]
    bad = bf.claims(cfg, _basis_results(cfg, 1.1))
    failed = [c.statement for c in bad if not c.holds]
    assert len(failed) == 2 and all("reference §4.4" in s for s in failed)


def test_basis_floor_error_below_the_floor_fails():
    cfg = bf.PRESETS["quick"]
    res = _basis_results(cfg)
    res["nomad"]["pod"]["rel_error_seeds"] = 0.9 * res["nomad"]["pca_floor_test"][:, None] + 0 * \
        res["nomad"]["pod"]["rel_error_seeds"]
    failed = [c.statement for c in bf.claims(cfg, res) if not c.holds]
    assert failed and all("POD-DeepONet" in s for s in failed)


def _size_results(cfg, se=0.1):
    ns = np.asarray(cfg.n_values)
    te = np.repeat((0.1 * (ns / ns[0]) ** -0.6)[:, None], cfg.n_seeds, 1)
    return dict(n_values=ns, data_limited=ns <= 64, gap_significant=np.ones(ns.size, bool),
                train_rel_error_seeds=0.5 * te, test_rel_error_seeds=te,
                fitted_rate=-0.6, fitted_rate_se=se, rate_data_limited=-1.1,
                rate_data_limited_se=se, gap_rate=-1.5, gap_rate_se=se)


def test_data_size_findings_fail_only_when_not_measured():
    cfg = dsz.PRESETS["quick"]
    assert all(c.holds and c.kind == "finding" for c in dsz.claims(cfg, _size_results(cfg)))
    # a slope fitted on too few points has no standard error: not measured
    failed = [c for c in dsz.claims(cfg, _size_results(cfg, se=float("nan"))) if not c.holds]
    assert len(failed) == 3
