"""Issue 13, items 9-10: malformed dataset files and non-finite / out-of-range arguments are
refused at the public API with a ValueError/TypeError naming the file or the argument, while
the good paths (valid files, traced values under jit/vmap/grad) are unchanged."""

from __future__ import annotations

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import _checks, data
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff.diffusion import samplers as S
from opdiff.approx import random_features as rf
from opdiff.nets import Ensemble
from opdiff.nets.deeponet import DeepONet, PODDeepONet

KEY = jax.random.key(0)
NAN, INF = math.nan, math.inf


# ----------------------------------------------------------------------------- item 9: data.load


def _unaligned(n=12, m=5):
    rng = np.random.default_rng(0)
    return data.UnalignedDataset(rng.normal(size=(n, m)), np.linspace(0, 1, m),
                                 rng.uniform(size=(n, 1)), rng.normal(size=n), {"note": "test"})


def _aligned(n=6, m=5, p=7):
    rng = np.random.default_rng(1)
    return data.AlignedDataset(rng.normal(size=(n, m)), np.linspace(0, 1, m),
                               np.linspace(0, 1, p)[:, None], rng.normal(size=(n, p)), {})


def _arrays(ds, **meta):
    metadata = {"format": data.FORMAT, "layout": "unaligned"}
    metadata.update(meta)
    return dict(inputs=ds.inputs, sensors=ds.sensors, points=ds.points, outputs=ds.outputs,
                metadata=np.array(json.dumps(metadata)))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    data.save(path, _unaligned())
    return path


def _names(path):
    """A regex that matches the file's path as the messages quote it."""
    return re.escape(repr(str(path)))


def test_valid_files_still_load_identically(tmp_path):
    for ds in (_unaligned(), _aligned()):
        path = tmp_path / f"{type(ds).__name__}.npz"
        data.save(path, ds)
        back = data.load(path)
        assert type(back) is type(ds)
        for name in ("inputs", "sensors", "points", "outputs"):
            np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
            assert getattr(back, name).dtype == np.asarray(getattr(ds, name)).dtype
        assert back.metadata == dict(ds.metadata, format=data.FORMAT,
                                     layout=back.metadata["layout"])


def test_truncated_file(tmp_path, saved):
    raw = saved.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=_names(bad) + ".*truncated or corrupted zip"):
            data.load(bad)


def test_corrupted_member_bytes(tmp_path, saved):
    raw = bytearray(saved.read_bytes())
    i = raw.index(b"\x93NUMPY") + 200  # inside the first member's array data: a CRC mismatch
    raw[i:i + 8] = bytes(8)
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=_names(bad) + ".*corrupted zip"):
        data.load(bad)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.npz"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=_names(bad) + ".*the file is empty"):
        data.load(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "noise.npz"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=_names(bad) + ".*neither a zip nor a .npy header"):
        data.load(bad)


def test_npy_instead_of_npz(tmp_path):
    bad = tmp_path / "single.npz"
    with open(bad, "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match=_names(bad) + ".*single .npy array"):
        data.load(bad)


def test_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load(tmp_path / "absent.npz")


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(drop="metadata"), r"not an opdiff dataset: missing \['metadata'\]"),
        (dict(drop="points"), r"not an opdiff dataset: missing \['points'\]"),
        (dict(metadata=np.array("{not json")), "metadata is not valid JSON"),
        (dict(metadata=np.array("[1, 2]")), "metadata must be a JSON object, got list"),
        (dict(metadata=np.array('"aligned"')), "metadata must be a JSON object, got str"),
        (dict(metadata=np.arange(3)), "metadata must be a JSON string"),
        (dict(meta=dict(format="someone-else/2")), "unknown format 'someone-else/2'"),
        (dict(meta=dict(layout="weird")), "unknown layout 'weird', expected one of"),
        (dict(meta=dict(layout=None)), "unknown layout None"),
        (dict(meta=dict(layout="aligned")), "invalid aligned dataset: outputs must have shape"),
        (dict(inputs=np.array([["a"] * 5] * 12)), "inputs must be a real numeric array"),
        (dict(outputs=np.ones(11)), "invalid unaligned dataset: points and outputs must have"),
        (dict(inputs=np.full((12, 5), np.nan)), "invalid unaligned dataset: inputs contains NaN"),
        (dict(sensors=np.ones(4)), "invalid unaligned dataset: sensors must have 5 rows"),
    ],
)
def test_malformed_contents(tmp_path, change, match):
    arrays = _arrays(_unaligned(), **change.pop("meta", {}))
    drop = change.pop("drop", None)
    if drop:
        del arrays[drop]
    arrays.update(change)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=_names(bad) + ".*" + match):
        data.load(bad)


def test_pickled_member_is_refused_without_unpickling(tmp_path):
    arrays = _arrays(_unaligned())
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = np.ones(2), np.ones(3)
    arrays["sensors"] = obj
    bad = tmp_path / "pickled.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=_names(bad) + ".*array 'sensors' cannot be read.*allow_pickle"):
        data.load(bad)


def test_deepxde_loaders_name_the_file(tmp_path):
    good = tmp_path / "train.npz"
    rng = np.random.default_rng(0)
    np.savez(good, X_train0=rng.normal(size=(6, 4)), X_train1=rng.uniform(size=(6, 1)),
             y_train=rng.normal(size=(6, 1)))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValueError, match=_names(cut) + ".*truncated or corrupted zip"):
        data.load_deepxde_unaligned(cut)
    flat = tmp_path / "flat.npz"
    np.savez(flat, X_train0=np.ones(4), X_train1=np.ones(4), y_train=np.ones(4))
    with pytest.raises(ValueError, match=_names(flat) + r".*X_train0 must be 2-D"):
        data.load_deepxde_unaligned(flat)
    noise = tmp_path / "noise.npz"
    noise.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        data.load_deepxde_aligned(noise)  # refused before the file is even opened
    with pytest.raises(ValueError, match=_names(noise) + ".*not a readable .npz"):
        data.load_deepxde_aligned(noise, allow_pickle=True)


def test_save_refuses_a_non_dataset(tmp_path):
    with pytest.raises(TypeError, match="dataset must be an AlignedDataset or UnalignedDataset"):
        data.save(tmp_path / "x.npz", {"inputs": np.ones((2, 2))})


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_funcs=True), "n_funcs must be a positive int, got True"),
    (dict(n_funcs=4.0), "n_funcs must be a positive int, got 4.0"),
    (dict(chunk=False), "chunk must be a positive int, got False"),
    (dict(points_per_func=True), "points_per_func must be a positive int, got True"),
])
def test_generation_counts_refuse_bools_and_floats(kwargs, match):
    from opdiff import functions
    from opdiff.operators import catalog

    space = functions.Sinusoids(n_grid=33)
    args = dict(n_funcs=3, sensors=functions.equispaced_sensors(4), key=KEY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        data.make_unaligned(space, catalog.antiderivative(space.grid), **args)
    if "points_per_func" not in kwargs:
        ok = dict(args, **{k: np.int64(2) for k in kwargs})  # NumPy ints are fine
        assert len(data.make_unaligned(space, catalog.antiderivative(space.grid), **ok)) >= 2


# ----------------------------------------------------------------------------- item 10: rf


@pytest.fixture(scope="module")
def rf_problem():
    x = jnp.linspace(0.0, 1.0, 40)
    return rf.sample_hidden(KEY, 10, 1, bandwidth=5.0), x, jnp.sin(3 * x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=jnp.linspace(0, 1, 40).at[5].set(jnp.nan)),
     r"x must be finite, got nan at index \[5\]"),
    (dict(y=jnp.sin(jnp.linspace(0, 1, 40)).at[3].set(jnp.inf)),
     r"y must be finite, got inf at index \[3\]"),
    (dict(y=np.full(40, np.nan)), r"y must be finite, got nan at index \[0\] \(40 of 40 entries\)"),
    (dict(weights=np.r_[np.ones(39), np.nan]), r"weights must be finite and >= 0, got nan"),
    (dict(weights=np.r_[np.ones(39), -1.0]), r"weights must be finite and >= 0, got -1.0"),
    (dict(ridge=INF), "ridge must be >= 0 and finite, got inf"),
    (dict(ridge=NAN), "ridge must be >= 0 and finite, got nan"),
])
def test_rf_fit_refuses_non_finite_data(rf_problem, kwargs, match):
    hidden, x, y = rf_problem
    args = dict(x=x, y=y, ridge=1e-6)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rf.solve(hidden, args.pop("x"), args.pop("y"), **args)


def test_rf_fit_still_traces(rf_problem):
    hidden, x, y = rf_problem
    eager = rf.solve(hidden, x, y, ridge=1e-6)
    jitted = jax.jit(lambda x, y, r: rf.solve(hidden, x, y, ridge=r))(x, y, 1e-6)
    # (float32, ill-conditioned features: compare the fitted values, not the coefficients)
    np.testing.assert_allclose(rf.predict(hidden, jitted, x), rf.predict(hidden, eager, x),
                               atol=1e-4)
    net = rf.RandomFeatureNet(1, 10, bandwidth=5.0, key=KEY).solve(x, y, ridge=1e-6)
    with pytest.raises(ValueError, match="y must be finite"):
        net.solve(x, y.at[0].set(jnp.nan), ridge=1e-6)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(bandwidth=INF), ValueError, "bandwidth must be > 0 and finite, got inf"),
    (dict(bandwidth=NAN), ValueError, "bandwidth must be > 0 and finite, got nan"),
    (dict(bandwidth=jnp.float32(jnp.inf)), ValueError, "bandwidth must be > 0 and finite, got inf"),
    (dict(bandwidth=-1.0), ValueError, "bandwidth must be > 0 and finite, got -1.0"),
    (dict(bandwidth="wide"), TypeError, "bandwidth must be > 0 and finite, got str 'wide'"),
    (dict(bandwidth=True), TypeError, "bandwidth must be > 0 and finite, got bool"),
    (dict(bandwidth=jnp.ones(3)), TypeError, r"bandwidth must .*\(a scalar\), got shape \(3,\)"),
    (dict(bandwidth=1.0, bias_bandwidth=INF), ValueError, "bias_bandwidth must be > 0 and finite"),
    (dict(bandwidth=1.0, n_features=True), ValueError, "n_features must be an int >= 1, got bool"),
    (dict(bandwidth=1.0, n_features=8.0), ValueError, "n_features must be an int >= 1, got float"),
])
def test_sample_hidden_refuses_bad_scalars(kwargs, exc, match):
    n = kwargs.pop("n_features", 8)
    with pytest.raises(exc, match=match):
        rf.sample_hidden(KEY, n, 1, **kwargs)


def test_sample_hidden_accepts_numpy_ints_and_traced_bandwidths():
    h = rf.sample_hidden(KEY, np.int64(8), np.int32(2), bandwidth=np.float32(3.0))
    assert h.weights.shape == (8, 2)
    ws = jax.vmap(lambda lam: rf.sample_hidden(KEY, 8, 1, bandwidth=lam).weights)(
        jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(ws[1], 2 * ws[0], rtol=1e-6)
    with pytest.raises(ValueError, match="bandwidth must be > 0 and finite, got nan"):
        rf.RandomFeatureNet(1, 4, bandwidth=NAN, key=KEY)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bandwidths=jnp.array([1.0, jnp.inf])),
     r"bandwidths must all be > 0 and finite, got inf at index \[1\]"),
    (dict(bandwidths=jnp.array([1.0, 0.0])), r"bandwidths must all be > 0 and finite, got 0.0"),
    (dict(x_test=jnp.full(5, jnp.nan)), "x_test must be finite"),
    (dict(y=jnp.full(30, jnp.inf)), "y must be finite"),
    (dict(ridge=INF), "ridge must be >= 0 and finite, got inf"),
])
def test_fit_sweep_refuses_non_finite(kwargs, match):
    x = jnp.linspace(0, 1, 30)
    args = dict(x=x, y=jnp.sin(x), x_test=x[:5], y_test=jnp.sin(x[:5]),
                bandwidths=jnp.array([1.0, 2.0]), ridge=1e-6)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rf.solve_sweep(KEY, args.pop("x"), args.pop("y"), args.pop("x_test"), args.pop("y_test"),
                     n_features=4, n_seeds=1, **args)


# ----------------------------------------------------------------------------- item 10: processes

TIME_METHODS = ("heat_time", "log_scale", "scale", "std", "variance", "drift", "diffusion2",
                "level")


@pytest.mark.parametrize("t", [NAN, INF, -INF, -0.5, 5.0])
@pytest.mark.parametrize("method", TIME_METHODS)
def test_time_methods_refuse_bad_t(method, t):
    proc = P.blurring((8,), basis="dct")
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\] and be finite, got"):
        getattr(proc, method)(t)


@pytest.mark.parametrize("t, match", [
    (NAN, "got nan"),
    (5.0, "got 5.0"),  # beyond T
    (jnp.array(INF), "got inf"),
    (np.array([0.5, 0.2, np.nan, 0.1]), r"got nan at index \[2\] \(1 of 4 entries\)"),
    (np.array([0.5, 0.2, 1.5, 0.1]), r"got 1.5 at index \[2\]"),
])
def test_sample_and_marginal_refuse_bad_t(t, match):
    proc = P.vp((8,), basis="dft")
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\] and be finite, " + match):
        proc.sample(KEY, jnp.zeros((4, 8)), t)
    if np.ndim(t) == 0:
        with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\] and be finite"):
            proc.marginal(jnp.zeros(8), t)


def test_marginal_beyond_a_longer_horizon():
    proc = P.ou((4,))  # T = 5
    proc.marginal(jnp.zeros(4), 5.0)  # the horizon itself is fine
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=5.0\] and be finite, got 5.5"):
        proc.marginal(jnp.zeros(4), 5.5)


def test_traced_times_still_work():
    proc = P.blurring((8,), basis="dct")
    x0 = jnp.linspace(-1.0, 1.0, 8)
    eager = proc.marginal(x0, 0.3)
    jitted = jax.jit(proc.marginal)(x0, 0.3)
    for a, b in zip(jitted, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a traced t is not checked (value unknown at trace time): no error, no host sync
    jax.jit(proc.marginal).lower(x0, 7.0)
    ts = jnp.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(jax.vmap(proc.std)(ts)[1], proc.std(0.5), rtol=1e-6)
    g = jax.grad(lambda t: jnp.sum(proc.std(t)))(0.5)
    assert np.isfinite(g)
    xt = jax.jit(proc.sample)(KEY, jnp.stack([x0, x0]), jnp.array([0.2, 0.7]))
    assert xt.shape == (2, 8) and bool(jnp.all(jnp.isfinite(xt)))
    assert np.all(np.diff(np.asarray(S.log_snr_grid(proc, 8))) > 0)  # vmaps proc.level


def test_horizon_rounded_to_float32_is_accepted():
    proc = P.vp((4,), T=0.3, t_min=1e-3)
    x0 = jnp.zeros((2, 4), jnp.float32)
    proc.sample(KEY, x0, jnp.float32(0.3))  # float32(0.3) > 0.3 by one rounding
    ones = jnp.ones(4, jnp.float32)
    mean32, std32 = proc.marginal(ones, np.float32(0.3))
    mean, std = proc.marginal(ones, 0.3)  # the horizon itself: the same law to float32
    np.testing.assert_allclose(mean32, mean, rtol=1e-6)
    np.testing.assert_allclose(std32, std, rtol=1e-6)
    with pytest.raises(ValueError, match="t must lie in"):
        proc.marginal(ones, 0.3 * (1 + 1e-4))  # beyond the rounding slack: refused


@pytest.mark.parametrize("call, match", [
    (lambda: P.noise_power_law((8,), "dft", NAN), "exponent must be a finite real number, got nan"),
    (lambda: P.noise_power_law((8,), "dft", 1.0, k0=INF),
     "k0 must be a finite number >= 0, got inf"),
    (lambda: P.noise_power_law((8,), "dft", 1.0, k0=0.0), "k0 must be > 0 for a power law"),
    (lambda: P.coloured((8,), NAN),
     "noise must be a colour name, a finite exponent or an array, got nan"),
    (lambda: P.coloured((8,), "pink", k0=NAN), "k0 must be a finite number >= 0, got nan"),
    (lambda: P.heat_dissipation((8,)).sample_prior(KEY, 2, mean=np.full(8, np.nan), var=np.ones(8)),
     r"mean must be finite, got nan at index \[0\]"),
    (lambda: P.heat_dissipation((8,)).sample_prior(KEY, 2, mean=np.zeros(8), var=-np.ones(8)),
     r"var must be finite and >= 0, got -1.0"),
    (lambda: P.heat_dissipation((8,)).prior(np.zeros(8), np.r_[np.ones(7), np.inf]),
     r"var must be finite and >= 0, got inf at index \[7\]"),
])
def test_process_constructors_and_prior_refuse_non_finite(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_samplers_and_oracle_refuse_non_finite_options():
    proc = P.vp((8,), basis="dft")
    with pytest.raises(ValueError, match="rho must be a finite real number, got inf"):
        S.karras_grid(proc, 4, rho=INF)
    with pytest.raises(ValueError, match="snr must be a finite real number, got inf"):
        S.check_options("pc", snr=INF)
    with pytest.raises(ValueError, match="eta must be a finite real number, got nan"):
        S.check_options("ddim", eta=NAN)
    with pytest.raises(ValueError, match=r"t1 must lie in \[0, T=1.0\] and be finite, got 2.0"):
        S.log_level_between(proc, 0.1, 2.0, 4)
    with pytest.raises(ValueError, match="need k0 > 0, variance > 0 .*got k0=inf"):
        O.power_law_field((8,), k0=INF)
    with pytest.raises(ValueError, match="finite alpha and mean.*mean=nan"):
        O.power_law_field((8,), mean=NAN)
    field = O.power_law_field((8,))
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\] and be finite, got 3.0"):
        field.marginal(proc, 3.0)


# ----------------------------------------------------------------------------- item 10: DeepONet


@pytest.mark.parametrize("scale, exc", [(NAN, ValueError), (INF, ValueError), (0.0, ValueError),
                                        (-1.0, ValueError), ("big", TypeError)])
def test_deeponet_fourier_scale(scale, exc):
    with pytest.raises(exc, match="fourier_scale must be a finite number > 0, got"):
        DeepONet(4, 1, 3, fourier_features=2, fourier_scale=scale, key=KEY)


def test_deeponet_good_paths():
    net = DeepONet(4, 1, 3, fourier_features=2, fourier_scale=np.float32(2.0), key=KEY)
    assert net.aligned(jnp.ones((2, 4)), jnp.ones((5, 1))).shape == (2, 5, 1)
    ens, params = Ensemble.create(
        lambda k: DeepONet(4, 1, 3, fourier_features=2, fourier_scale=2.0, key=k),
        jax.random.split(KEY, 2))  # built under vmap: the scale is still concrete
    assert jax.tree.leaves(params)[0].shape[0] == 2


def test_pod_deeponet_refuses_non_finite_basis():
    modes = np.zeros((2, 5))
    modes[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"modes must be finite, got nan at index \[1, 2\]"):
        PODDeepONet(4, np.zeros(5), modes, key=KEY)
    with pytest.raises(ValueError, match=r"mean must be finite, got inf"):
        PODDeepONet(4, np.r_[np.zeros(4), np.inf], np.zeros((2, 5)), key=KEY)


# ----------------------------------------------------------------------------- the shared checks


def test_check_positive_int():
    assert _checks.check_positive_int("n", np.int64(3)) == 3
    assert _checks.check_positive_int("n", 0, minimum=0) == 0
    for bad, shown in ((True, "bool True"), (np.bool_(True), "bool"), (2.0, "float 2.0"),
                       ("3", "str '3'"), (0, "0")):
        with pytest.raises(ValueError, match=re.escape(f"n must be an int >= 1, got {shown}")):
            _checks.check_positive_int("n", bad)


def test_check_finite_scalar_and_array():
    assert _checks.check_finite_scalar("a", np.int32(2), low=0) == 2.0
    with pytest.raises(ValueError, match=r"a must be a finite real number in \[0, 1\), got 1.0"):
        _checks.check_finite_scalar("a", 1.0, low=0, high=1, high_open=True)
    with pytest.raises(TypeError, match="a must be a finite real number, got NoneType None"):
        _checks.check_finite_scalar("a", None)
    assert _checks.check_finite_scalar("a", 1.0 + 1e-9, high=1.0, tol=1e-6) == 1.0 + 1e-9
    # traced: unchecked, returned as is
    assert jax.jit(lambda v: _checks.check_finite_scalar("a", v, low=0) + 1)(-5.0) == -4.0
    with pytest.raises(TypeError, match="a must be a real numeric array, got dtype <U1"):
        _checks.check_finite_array("a", np.array(["x"]))
    with pytest.raises(ValueError, match=r"a must be finite, got nan at index \[1, 0\] \(1 of 4"):
        _checks.check_finite_array("a", jnp.array([[1.0, 2.0], [jnp.nan, 3.0]]))
    assert _checks.check_finite_array("a", np.arange(3)) is not None  # ints are finite
    out = jax.jit(lambda v: _checks.check_finite_array("a", v) * 2)(jnp.array([1.0, jnp.nan]))
    assert np.isnan(out[1])  # traced: unchecked
    for const in (jnp.array([1.0, jnp.nan]), jnp.ones(5000).at[4321].set(jnp.inf)):
        with pytest.raises(ValueError, match="c must be finite"):  # concrete, even inside jit
            jax.jit(lambda v, c=const: _checks.check_finite_array("c", c) * v)(1.0)
    # a large array is reduced on its device; only the message fetches values
    big = jnp.linspace(0.0, 1.0, 5000).at[4321].set(jnp.inf)
    with pytest.raises(ValueError, match=r"b must be finite and in \[0.0, 1.0\], got inf at index "
                                         r"\[4321\] \(1 of 5000 entries\)"):
        _checks.check_finite_array("b", big, low=0.0, high=1.0)
    assert _checks.check_finite_array("b", big.at[4321].set(1.0), low=0.0, high=1.0) is not None
