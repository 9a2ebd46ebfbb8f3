"""The claims of operator_zoo, resolution and resolution_denoiser fed violating results: exactly
the claims that should fail do (a claim that cannot fail is a defect)."""

from __future__ import annotations

import copy

from experiments import operator_zoo as oz
from experiments import resolution as rs
from experiments import resolution_denoiser as rd


def _zoo():
    rows = []
    for p in ("heat_backward", "burgers"):
        for m in ("deeponet", "pod_deeponet", "fno"):
            rows.append(dict(problem=p, kind=p, model=m, mse=0.05, se=1e-3, rel_l2=0.2, rel_l2_se=0.01,
                             params=100, floor_wiener=0.03 if p == "heat_backward" else None,
                             floor_pca=0.01))
    return dict(rows=rows, n_test=500, p=32, problems=["heat_backward", "burgers"])


def _failed(claims):
    return [c.statement for c in claims if not c.holds]


def test_operator_zoo_claims_fail_below_their_floors():
    cfg = oz.PRESETS["quick"]
    assert not _failed(oz.claims(cfg, _zoo()))
    res = _zoo()
    res["rows"][2]["mse"] = 0.03 - 4e-3  # the backward FNO 4 SE below the Wiener MMSE
    failed = _failed(oz.claims(cfg, res))
    assert len(failed) == 1 and "heat_backward, fno: test MSE >= Wiener" in failed[0]
    res = _zoo()
    res["rows"][4]["mse"] = 0.0099  # Burgers POD-DeepONet below its PCA floor
    failed = _failed(oz.claims(cfg, res))
    assert len(failed) == 1 and "burgers, pod_deeponet: test MSE >= PCA floor" in failed[0]
    res = _zoo()
    res["rows"][5]["rel_l2"] = float("nan")  # a diverged FNO: the finding fails
    failed = _failed(oz.claims(cfg, res))
    assert len(failed) == 1 and "burgers: FNO minus DeepONet" in failed[0]


def _res():
    score = dict(mse=0.025, se=1e-4, rel_l2=0.2, rel_l2_se=0.002)
    rows = [dict(problem="heat_forward", model=m, scores=[dict(score)] * 3, shared_gap=0.0139,
                 shared_gap_se=1.3e-4, exact_gap=0.0139 if m == "linear_fno" else None)
            for m in ("fno", "deeponet", "linear_fno")]
    return dict(rows=rows, n=64, resolutions=[64, 128, 256], aliasing_mmse=0.0212,
                above_nyquist=0.09)


def test_resolution_claims_fail_on_violations():
    cfg = rs.PRESETS["quick"]
    assert not _failed(rs.claims(cfg, _res()))
    res = copy.deepcopy(_res())
    res["rows"][0]["scores"][0]["mse"] = 0.0212 - 4e-4  # 4 SE below the aliasing MMSE
    failed = _failed(rs.claims(cfg, res))
    assert len(failed) == 1 and "fno at n=64: test MSE >= aliasing MMSE" in failed[0]
    res = copy.deepcopy(_res())
    res["rows"][2]["shared_gap"] = 0.0139 + 4 * 1.3e-4  # 4 SE off the exact aliasing gap
    failed = _failed(rs.claims(cfg, res))
    assert len(failed) == 1 and "exact aliasing gap" in failed[0]


def _den():
    rows = [dict(model=m, mse=[[0.02, 0.09], [0.02, 0.08]], se=[[1e-3, 1e-3], [1e-3, 1e-3]],
                 params=10) for m in ("fno", "unet")]
    return dict(rows=rows, sizes=[32, 64], n=32, mmse=[[0.0136, 0.079], [0.0118, 0.056]])


def test_resolution_denoiser_claims_fail_below_the_mmse():
    cfg = rd.PRESETS["quick"]
    assert not _failed(rd.claims(cfg, _den()))
    res = copy.deepcopy(_den())
    res["rows"][1]["mse"][1][1] = 0.056 - 4e-3  # the U-Net at 64², 4 SE below the MMSE
    failed = _failed(rd.claims(cfg, res))
    assert len(failed) == 1 and "unet (trained at 32²) at 64²" in failed[0]
