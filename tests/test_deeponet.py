"""DeepONet models: shapes, parameter counts, evaluation equivalences, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff.nets import DeepONet, PODDeepONet, nnx
from opdiff.nets.deeponet import n_params, param_count


def _n_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_paper_configuration_has_7401_parameters():
    # DeepXDE's DeepONet([100, 40, 40], [1, 40, 40]) with a scalar bias: 7,401 parameters.
    net = DeepONet(100, 1, 40, key=jax.random.key(0))
    assert _n_params(net) == 7401


@pytest.mark.parametrize("m, d, p, bw, bd, tw, td, k", [
    (100, 1, 40, 40, 1, 40, 1, 1), (7, 2, 5, 9, 3, 4, 2, 3), (3, 1, 1, 2, 1, 6, 4, 2)])
def test_param_count_formula_counts_the_leaves(m, d, p, bw, bd, tw, td, k):
    net = DeepONet(m, d, p, branch_width=bw, branch_depth=bd, trunk_width=tw, trunk_depth=td,
                   n_outputs=k, key=jax.random.key(0))
    want = param_count(m, p, branch_width=bw, branch_depth=bd, trunk_width=tw, trunk_depth=td,
                       coord_dim=d, n_outputs=k)
    assert n_params(net) == _n_params(net) == want
    assert param_count(100, 40) == 7401


@pytest.mark.parametrize("kw", [dict(), dict(stacked=True), dict(n_outputs=3),
                                dict(fourier_features=6), dict(stacked=True, n_outputs=2)])
def test_aligned_equals_unaligned_and_pointwise(kw):
    net = DeepONet(12, 2, 5, branch_width=16, trunk_width=16, key=jax.random.key(1), **kw)
    k1, k2 = jax.random.split(jax.random.key(2))
    u = jax.random.normal(k1, (4, 12))
    y = jax.random.uniform(k2, (7, 2))
    a = net.aligned(u, y)
    assert a.shape == (4, 7, net.n_outputs)
    b = net.unaligned(jnp.repeat(u, 7, axis=0), jnp.tile(y, (4, 1))).reshape(4, 7, -1)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a[2, 3], net(u[2], y[3]), rtol=1e-5, atol=1e-6)


def test_output_is_branch_dot_trunk_plus_bias():
    net = DeepONet(5, 1, 3, branch_width=8, trunk_width=8, key=jax.random.key(3))
    net.bias[...] = jnp.array([0.25])
    u, y = jnp.arange(5.0) / 5, jnp.array([0.4])
    b = net.branch_coefficients(u)
    t = net.basis(y)
    assert b.shape == t.shape == (1, 3)
    np.testing.assert_allclose(net(u, y), jnp.sum(b * t) + 0.25, rtol=1e-6)
    assert bool(jnp.all(t >= 0))  # the trunk's last layer is activated (ReLU)


def test_stacked_branch_members_are_independent_networks():
    net = DeepONet(4, 1, 3, stacked=True, branch_width=6, trunk_width=6, key=jax.random.key(4))
    assert _n_params(net.branch) == 3 * ((4 + 1) * 6 + (6 + 1) * 1)
    u = jnp.ones(4)
    base = net.branch_coefficients(u)
    net.branch.kernels[0][...] = net.branch.kernels[0][...].at[1].multiply(0.0)
    changed = net.branch_coefficients(u)
    np.testing.assert_allclose(changed[0, [0, 2]], base[0, [0, 2]])  # others untouched


def test_fourier_features_are_frozen_during_training():
    net = DeepONet(3, 1, 2, fourier_features=4, key=jax.random.key(5))
    b0 = np.asarray(net.fourier[...])
    u = jnp.ones((8, 3))
    y = jnp.linspace(0, 1, 5)[:, None]

    def loss(model, batch, key):
        return jnp.mean((model.aligned(u, y)[..., 0] - 1.0) ** 2)

    res = opdiff.fit(loss, net, optax.adam(1e-2), lambda k: 0.0, steps=20, key=jax.random.key(0))
    np.testing.assert_array_equal(res.params.fourier[...], b0)
    assert res.losses[-1] < res.losses[0]


def test_pod_deeponet_with_exact_coefficients_is_the_projection(x64):
    rng = np.random.default_rng(0)
    modes = np.linalg.qr(rng.normal(size=(20, 3)))[0].T  # orthonormal rows, unit weights
    mean = rng.normal(size=20)
    net = PODDeepONet(6, mean, modes, branch_width=8, key=jax.random.key(0),
                      param_dtype=jnp.float64)
    u = jnp.asarray(rng.normal(size=(5, 6)))
    coeffs = jax.vmap(net.branch)(u)
    np.testing.assert_allclose(net.aligned(u), mean + coeffs @ modes, atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: DeepONet(10, 1, 0, key=jax.random.key(0)), "p must be an int >= 1"),
        (lambda: DeepONet(0, 1, 4, key=jax.random.key(0)), "n_sensors must be"),
        (lambda: DeepONet(10, 1, 4, activation="nope", key=jax.random.key(0)), "activation"),
        (lambda: DeepONet(10, 1, 4, key=jax.random.key(0)).aligned(jnp.ones((3, 9)), jnp.ones((5, 1))),
         "u must have shape .* n_sensors = 10"),
        (lambda: DeepONet(10, 1, 4, key=jax.random.key(0)).aligned(jnp.ones((3, 10)), jnp.ones((5, 2))),
         "y must have shape .* coord_dim = 1"),
        (lambda: DeepONet(10, 1, 4, key=jax.random.key(0)).unaligned(jnp.ones((3, 10)), jnp.ones((4, 1))),
         "same number of rows"),
        (lambda: PODDeepONet(4, np.zeros(5), np.zeros((2, 6)), key=jax.random.key(0)),
         "mean must have shape"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
