"""Operator datasets: exact labels, layouts, npz round trips, DeepXDE import, bad input."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import data


@dataclasses.dataclass(frozen=True)
class LinearFunctions:
    """u(x) = a + b x with a, b ~ N(0, 1): a tiny space whose antiderivative is known."""

    n_grid: int = 101

    @property
    def grid(self):
        return np.linspace(0.0, 1.0, self.n_grid)

    def sample(self, n, *, key, dtype=jnp.float32):
        ab = jax.random.normal(key, (n, 2), dtype)
        return ab[:, :1] + ab[:, 1:] * jnp.asarray(self.grid, dtype)


def _antiderivative_spec(grid):
    h = np.diff(grid)

    def apply(u):  # cumulative trapezoid: exact for linear u
        inc = 0.5 * (u[:, 1:] + u[:, :-1]) * jnp.asarray(h, u.dtype)
        return jnp.concatenate([jnp.zeros_like(u[:, :1]), jnp.cumsum(inc, axis=1)], axis=1)

    return data.OperatorSpec("antiderivative", apply, grid[:, None], {"x0": 0.0})


def _coefficients(inputs, sensors):
    # recover a, b from two sensor values (inputs are exact for linear functions)
    b = (inputs[:, -1] - inputs[:, 0]) / (sensors[-1] - sensors[0])
    return inputs[:, 0] - b * sensors[0], b


def test_aligned_labels_are_exact(x64):
    space = LinearFunctions()
    sensors = np.linspace(0.05, 0.95, 7)
    ds = data.make_aligned(space, _antiderivative_spec(space.grid), n_funcs=50,
                           sensors=sensors, key=jax.random.key(0), n_points=13, interp="linear",
                           chunk=16, dtype=jnp.float64)
    assert ds.inputs.shape == (50, 7) and ds.points.shape == (13, 1) and ds.outputs.shape == (50, 13)
    a, b = _coefficients(ds.inputs, sensors)
    np.testing.assert_allclose(ds.inputs, a[:, None] + b[:, None] * sensors, atol=1e-12)
    y = ds.points[:, 0]
    np.testing.assert_allclose(ds.outputs, a[:, None] * y + b[:, None] * y**2 / 2, atol=1e-12)
    assert ds.metadata["operator"] == "antiderivative" and ds.metadata["layout"] == "aligned"
    assert len(set(y.tolist())) == 13  # drawn without replacement


def test_unaligned_labels_and_conversion(x64):
    space = LinearFunctions()
    sensors = np.linspace(0, 1, 5)
    ds = data.make_unaligned(space, _antiderivative_spec(space.grid), n_funcs=40,
                             sensors=sensors, key=jax.random.key(1), points_per_func=3,
                             interp="linear", dtype=jnp.float64)
    assert ds.inputs.shape == (120, 5) and ds.points.shape == (120, 1) and ds.outputs.shape == (120,)
    a, b = _coefficients(ds.inputs, sensors)
    y = ds.points[:, 0]
    np.testing.assert_allclose(ds.outputs, a * y + b * y**2 / 2, atol=1e-12)
    np.testing.assert_array_equal(ds.inputs[0], ds.inputs[2])  # 3 rows per function
    aligned = data.make_aligned(space, _antiderivative_spec(space.grid), n_funcs=4,
                                sensors=sensors, key=jax.random.key(2), n_points=6)
    flat = aligned.to_unaligned()
    assert len(flat) == 24
    np.testing.assert_array_equal(flat.outputs.reshape(4, 6), aligned.outputs)


def test_same_key_same_data_and_chunking_invariance():
    space = LinearFunctions()
    spec = _antiderivative_spec(space.grid)
    kw = dict(n_funcs=30, sensors=np.linspace(0, 1, 4), key=jax.random.key(5), n_points=5)
    a = data.make_aligned(space, spec, **kw)
    b = data.make_aligned(space, spec, **kw)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    c = data.make_aligned(space, spec, **{**kw, "key": jax.random.key(6)})
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("layout", ["aligned", "unaligned"])
def test_npz_round_trip_without_pickle(tmp_path, layout):
    space = LinearFunctions()
    make = data.make_aligned if layout == "aligned" else data.make_unaligned
    ds = make(space, _antiderivative_spec(space.grid), n_funcs=8, sensors=np.linspace(0, 1, 4),
              key=jax.random.key(0))
    path = tmp_path / "d.npz"
    data.save(path, ds)
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    back = data.load(path)
    assert type(back) is type(ds) and back.metadata["layout"] == layout
    for name in ("inputs", "sensors", "points", "outputs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    assert back.metadata["space_params"] == {"n_grid": 101}


def test_deepxde_unaligned_layout(tmp_path):
    rng = np.random.default_rng(0)
    u, y, s = rng.normal(size=(20, 100)), rng.uniform(size=(20, 1)), rng.normal(size=(20, 1))
    np.savez(tmp_path / "train.npz", X_train0=u, X_train1=y, y_train=s)
    ds = data.load_deepxde_unaligned(tmp_path / "train.npz")
    np.testing.assert_array_equal(ds.inputs, u)
    np.testing.assert_array_equal(ds.points, y)
    np.testing.assert_array_equal(ds.outputs, s[:, 0])
    with pytest.raises(ValueError, match="X_test0"):
        data.load_deepxde_unaligned(tmp_path / "train.npz", split="test")


def test_deepxde_aligned_needs_the_named_opt_in(tmp_path):
    rng = np.random.default_rng(1)
    branch, trunk, y = rng.normal(size=(15, 100)), np.linspace(0, 1, 100)[:, None], rng.normal(size=(15, 100))
    x = np.empty(2, dtype=object)
    x[0], x[1] = branch, trunk
    np.savez(tmp_path / "aligned.npz", X=x, y=y)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        data.load_deepxde_aligned(tmp_path / "aligned.npz")
    ds = data.load_deepxde_aligned(tmp_path / "aligned.npz", allow_pickle=True)
    np.testing.assert_array_equal(ds.inputs, branch)
    np.testing.assert_array_equal(ds.points, trunk)
    np.testing.assert_array_equal(ds.outputs, y)
    with pytest.raises(ValueError, match="not an opdiff dataset"):
        data.load(tmp_path / "aligned.npz")  # and the plain loader never unpickles


def test_dataset_arrays_feed_the_engine():
    import optax

    import opdiff

    space = LinearFunctions()
    ds = data.make_aligned(space, _antiderivative_spec(space.grid), n_funcs=64,
                           sensors=np.linspace(0, 1, 2), key=jax.random.key(0), n_points=4)
    points = jnp.asarray(ds.points[:, 0])

    def loss(w, batch, key):  # G(u)(y) = a y + b y^2/2 is linear in (u(0), u(1)): fit it
        u0, u1 = batch["inputs"][:, 0], batch["inputs"][:, 1]
        a, b = u0, u1 - u0
        feats = jnp.stack([a[:, None] * points, b[:, None] * points**2], -1)
        return jnp.mean((feats @ w - batch["outputs"]) ** 2)

    res = opdiff.fit(loss, jnp.zeros(2), optax.adam(0.05), ds.arrays(), steps=400,
                     key=jax.random.key(0), batch_size=16, steps_per_call=50)
    np.testing.assert_allclose(res.params, [1.0, 0.5], atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_funcs=0), "n_funcs must be a positive int"),
        (dict(sensors=np.array([0.5, 1.5])), "domain"),
        (dict(n_points=1000), "n_points must be an int in"),
        (dict(chunk=0), "chunk must be a positive int"),
    ],
)
def test_bad_generation_arguments(kwargs, match):
    space = LinearFunctions()
    args = dict(n_funcs=4, sensors=np.linspace(0, 1, 3), key=jax.random.key(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        data.make_aligned(space, _antiderivative_spec(space.grid), **args)


def test_bad_dataset_shapes_and_nan():
    ok = dict(inputs=np.zeros((3, 2)), sensors=np.zeros(2), points=np.zeros((4, 1)),
              outputs=np.zeros((3, 4)))
    data.AlignedDataset(**ok)
    with pytest.raises(ValueError, match="outputs must have shape"):
        data.AlignedDataset(**{**ok, "outputs": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="inputs must be 2-D"):
        data.AlignedDataset(**{**ok, "inputs": np.zeros(3)})
    with pytest.raises(ValueError, match="inputs contains NaN"):
        data.AlignedDataset(**{**ok, "inputs": np.full((3, 2), np.nan)})
    with pytest.raises(ValueError, match="sensors must have 2 rows"):
        data.AlignedDataset(**{**ok, "sensors": np.zeros(3)})
    with pytest.raises(ValueError, match="output_points must have shape"):
        data.OperatorSpec("x", lambda u: u, np.zeros(3))


def test_blow_ups_raise_or_are_dropped():
    space = LinearFunctions()
    grid = space.grid

    def apply(u):  # "blows up" wherever u(0) > 1
        return jnp.where(u[:, :1] > 1.0, jnp.inf, u)

    spec = data.OperatorSpec("blowup", apply, grid[:, None])
    kw = dict(n_funcs=200, sensors=np.linspace(0, 1, 3), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"non-finite outputs for \d+ of 200"):
        data.make_aligned(space, spec, **kw)
    ds = data.make_unaligned(space, spec, on_nonfinite="drop", points_per_func=2, **kw)
    n_bad = ds.metadata["dropped_nonfinite"]
    assert 10 < n_bad < 60  # P(N(0,1) > 1) = 0.16
    assert len(ds) == 2 * (200 - n_bad) and np.all(ds.inputs[:, 0] <= 1.0)
