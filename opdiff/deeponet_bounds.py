r"""Computable error floors and estimates for DeepONets (and every operator learner).

**PCA reconstruction floor** (Lanthaler, Mishra, Karniadakis 2022, §3; reference/deeponet.md
§4.3). Every DeepONet output lies in an affine space :math:`\tau_0+\mathrm{span}\{\tau_1..
\tau_p\}`, so for every DeepONet with ``p`` trunk functions

.. math:: \Big(\mathbb E_u\|G(u)-\mathcal N(u)\|_{L^2}^2\Big)^{1/2}\ \ge\
          \Big(\sum_{k>p}\lambda_k\Big)^{1/2},

:math:`\lambda_k` the eigenvalues of the covariance operator of the outputs :math:`G(u)`, with
equality for :math:`\tau_0=` the mean and :math:`\tau_k=` the eigenfunctions (PCA). On a grid
with quadrature weights :math:`w` the operator is :math:`W^{1/2}CW^{1/2}`, :math:`C` the
(centred) covariance of the grid values. Computed in float64; with ``n`` samples the empirical
floor is biased low (estimate it on held-out outputs, or use an exact spectrum).

**Sensor count** (Lu et al. 2021, Thm 1 and reference §4.5): with ``m`` equispaced sensors and
piecewise-linear reconstruction of a GRF with RBF kernel of length scale ``l``,
:math:`\kappa(m)=\mathbb E\max|u-u_m|\approx c/((m-1)^2l^2)`, :math:`c\approx0.4`; for a
Lipschitz ODE right-hand side the operator error it causes is at most
:math:`c_g(b-a)\kappa e^{c_g(b-a)}` (Gronwall).

**Exact linear-Gaussian floors.** A Gaussian random field sample is its values :math:`u=Fz`
on a fine grid, :math:`z\sim N(0,I)` (``F`` the float64 factor the sampler uses). For a linear
operator read at output points, :math:`s=Au=Bz` with :math:`B=AF` (the antiderivative: ``A``
rows of :func:`cumulative_trapezoid_matrix`, exact for the piecewise-linear input), and sensors
read :math:`Su`. Every second moment is then a matrix product (:func:`gaussian_floors`): the
PCA floor of the outputs (eigenvalues of :math:`W^{1/2}BB^\top W^{1/2}`), the Bayes floor of
*any* predictor that sees only the sensor values,

.. math:: \mathbb E\|s-\mathbb E[s\mid Su]\|_W^2=\|W^{1/2}B(I-QQ^\top)\|_F^2,\qquad
          QR=(SF)^\top,

and the joint floor of any predictor that reads the sensors *and* outputs an affine
``p``-dimensional space: the Bayes floor plus the PCA tail of :math:`\mathbb E[s\mid Su]`.

**Errors** in the Bochner norm :math:`(\mathbb E\|v-\hat v\|_{L^2}^2)^{1/2}` with trapezoid
weights (:func:`sq_errors`, :func:`bochner`, with the Monte-Carlo slack :func:`mc_rtol`): the
norm in which the PCA floor is stated.
"""


from __future__ import annotations

import dataclasses

import numpy as np

from opdiff._checks import check_increasing_grid

__all__ = [
    "PCA",
    "bochner",
    "componentwise_floor",
    "cumulative_trapezoid_matrix",
    "decoder_errors",
    "gaussian_floors",
    "gronwall_sensor_bound",
    "mc_rtol",
    "pca",
    "pca_floor",
    "joint_floor",
    "pca_tail",
    "project",
    "relative_bochner",
    "relative_pca_floor",
    "sensor_error_estimate",
    "sensor_theory",
    "sinusoid_floors",
    "sq_errors",
    "subgrid",
    "trapezoid_weights",
    "weighted_eigenvalues",
]


def trapezoid_weights(grid) -> np.ndarray:
    """Trapezoid quadrature weights of a strictly increasing 1-D grid (float64)."""
    x = check_increasing_grid("grid", grid)
    h = np.diff(x)
    w = np.zeros_like(x)
    w[:-1] += h / 2
    w[1:] += h / 2
    return w


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal components of output functions in the weighted inner product.

    Attributes:
        mean: ``[P]`` mean output.
        modes: ``[r, P]`` eigenfunctions, orthonormal: ``modes @ diag(w) @ modes.T = I``.
        eigenvalues: ``[r]`` covariance eigenvalues, descending (``r = min(n, P)``).
        weights: ``[P]`` quadrature weights.
        second_moment: :math:`\\mathbb E\\|v\\|^2=\\sum\\lambda_k+\\|\\bar v\\|^2`.
    """

    mean: np.ndarray
    modes: np.ndarray
    eigenvalues: np.ndarray
    weights: np.ndarray
    second_moment: float


def pca(outputs, weights) -> PCA:
    """PCA of ``outputs [n, P]`` (rows are functions on ``P`` points) with weights ``[P]``.

    Uses the SVD of :math:`(V-\\bar v)W^{1/2}/\\sqrt n` in float64 (the centred covariance
    with the 1/n normalisation).

    Raises:
        ValueError: on shape mismatches, non-positive weights, fewer than 2 rows or NaN.
    """
    v = np.asarray(outputs, np.float64)
    w = np.asarray(weights, np.float64)
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"outputs must have shape (n, P) with n >= 2, got {v.shape}")
    if w.shape != (v.shape[1],):
        raise ValueError(f"weights must have shape ({v.shape[1]},) like the outputs' points, "
                         f"got {w.shape}")
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and positive")
    if not np.all(np.isfinite(v)):
        raise ValueError("outputs contains NaN or infinite values")
    n = v.shape[0]
    mean = v.mean(axis=0)
    sw = np.sqrt(w)
    _, s, vt = np.linalg.svd((v - mean) * sw / np.sqrt(n), full_matrices=False)
    modes = vt / sw
    second = float(np.sum(s**2) + np.sum(w * mean**2))
    return PCA(mean=mean, modes=modes, eigenvalues=s**2, weights=w, second_moment=second)


def _check_p(p):
    ps = np.atleast_1d(np.asarray(p))
    if ps.size == 0 or not np.issubdtype(ps.dtype, np.integer) or np.any(ps < 1):
        raise ValueError(f"p must be a positive int or a sequence of them, got {p!r}")
    return ps


def pca_floor(eigenvalues, p):
    r""":math:`\sqrt{\sum_{k>p}\lambda_k}` for every ``p`` (an int gives a float).

    Raises:
        ValueError: if a ``p`` is not a positive int or an eigenvalue is negative beyond
            round-off.
    """
    lam = np.sort(np.asarray(eigenvalues, np.float64))[::-1]
    if lam.ndim != 1 or (lam.size and lam.min() < -1e-12 * max(lam.max(), 1e-300)):
        raise ValueError("eigenvalues must be a 1-D array of non-negative numbers")
    lam = np.clip(lam, 0.0, None)
    ps = _check_p(p)
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tail[k] = sum_{j>=k} lam_j
    out = np.sqrt(tail[np.minimum(ps, lam.size)])
    return float(out[0]) if np.ndim(p) == 0 else out


def relative_pca_floor(result: PCA, p):
    r"""The floor divided by :math:`\sqrt{\mathbb E\|v\|^2}` (relative :math:`L^2` error floor)."""
    return pca_floor(result.eigenvalues, p) / np.sqrt(result.second_moment)


def project(result: PCA, outputs, p: int) -> np.ndarray:
    """Best reconstruction of ``outputs [n, P]`` from the mean and the first ``p`` modes
    (exact POD coefficients): what a POD-DeepONet with a perfect branch outputs."""
    (p,) = _check_p(p)
    v = np.asarray(outputs, np.float64)
    modes = result.modes[:p]
    coef = (v - result.mean) @ (modes * result.weights).T
    return result.mean + coef @ modes


def sensor_error_estimate(m, length_scale: float, c: float = 0.4):
    r""":math:`\kappa(m)\approx c/((m-1)^2l^2)`: the expected max error of the piecewise-linear
    interpolant through ``m`` equispaced sensors of an RBF GRF (``c``: 0.33-0.47 measured)."""
    m = np.asarray(m, np.float64)
    if np.any(m < 2):
        raise ValueError(f"m must be >= 2 sensors, got {m!r}")
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale!r}")
    return c / ((m - 1.0) ** 2 * length_scale**2)


def gronwall_sensor_bound(kappa, lipschitz: float, length: float = 1.0):
    r""":math:`c(b-a)\kappa e^{c(b-a)}`: the operator error caused by a sensor error
    :math:`\kappa` for :math:`s'=g(s,u)` with :math:`g` ``lipschitz``-Lipschitz."""
    return lipschitz * length * np.asarray(kappa) * np.exp(lipschitz * length)


# --- exact linear maps and linear-Gaussian floors ---------------------------------------------


def cumulative_trapezoid_matrix(grid) -> np.ndarray:
    r"""``J [N, N]`` with :math:`(Ju)_i=\sum_{j<i}(x_{j+1}-x_j)(u_j+u_{j+1})/2` (float64): the
    antiderivative from :math:`x_0` of the piecewise-linear interpolant of ``u``."""
    x = np.asarray(grid, np.float64)
    h = np.diff(x)
    inc = np.zeros((x.size - 1, x.size))
    rows = np.arange(x.size - 1)
    inc[rows, rows] = h / 2
    inc[rows, rows + 1] += h / 2
    return np.vstack([np.zeros((1, x.size)), np.cumsum(inc, axis=0)])


def subgrid(n_grid: int, n_points: int) -> np.ndarray:
    """Indices of ``n_points`` equispaced points of an ``n_grid``-point grid (endpoints
    included).

    Raises:
        ValueError: if ``n_points - 1`` does not divide ``n_grid - 1``.
    """
    if (n_grid - 1) % (n_points - 1):
        raise ValueError(f"n_points - 1 = {n_points - 1} must divide n_grid - 1 = {n_grid - 1}")
    return np.arange(0, n_grid, (n_grid - 1) // (n_points - 1))


def weighted_eigenvalues(mat, w) -> np.ndarray:
    r"""Squared singular values of :math:`W^{1/2}M` (descending): the eigenvalues of the
    covariance :math:`MM^\top` in the ``w``-weighted inner product.

    Args:
        mat: ``[P, r]`` factor of the covariance.
        w: ``[P]`` quadrature weights.
    """
    return np.linalg.svd(np.sqrt(w)[:, None] * mat, compute_uv=False) ** 2


def gaussian_floors(B, w, SF=None) -> dict:
    r"""Population second moments for outputs ``s = B z``, ``z ~ N(0, I)`` (mean zero).

    Args:
        B: ``[P, r]`` output map times the input factor (``A F``).
        w: ``[P]`` quadrature weights of the output points.
        SF: ``[m, r]`` sensor map times the factor (``S F``); ``None``: no sensor floor.

    Returns:
        ``eigs`` (output covariance eigenvalues :math:`\lambda_k`, descending: the PCA floor
        at ``p`` is :math:`(\sum_{k>p}\lambda_k)^{1/2}`), ``second_moment``
        (:math:`\mathbb E\|s\|_W^2=\sum_k\lambda_k`), and with ``SF``: ``sensor_sq``
        (:math:`\mathbb E\|s-\mathbb E[s|Su]\|^2`, the Bayes floor squared) and
        ``explained_eigs`` (eigenvalues of the covariance of :math:`\mathbb E[s|Su]`). The
        projection onto the row space of ``SF`` is taken from a QR factorisation (stable when
        the sensor covariance is numerically singular, as for the RBF kernel).
    """
    B = np.asarray(B, np.float64)
    out = {"eigs": weighted_eigenvalues(B, w)}
    out["second_moment"] = float(np.sum(out["eigs"]))
    if SF is not None:
        q, _ = np.linalg.qr(np.asarray(SF, np.float64).T)
        bq = B @ q
        resid = B - bq @ q.T
        out["sensor_sq"] = float(np.sum(w[:, None] * resid**2))
        out["explained_eigs"] = weighted_eigenvalues(bq, w)
    return out


def joint_floor(floors: dict, p) -> np.ndarray:
    r"""The floor of any predictor that reads the sensors *and* outputs an affine ``p``-space:

    .. math:: \Big(\mathbb E\|s-\mathbb E[s|Su]\|^2+\sum_{k>p}\mu_k\Big)^{1/2},

    :math:`\mu_k` the eigenvalues of the covariance of :math:`\mathbb E[s|Su]` (the best such
    predictor is the rank-``p`` PCA of :math:`\mathbb E[s|Su]`, whose residual is orthogonal to
    the Bayes residual). ``floors`` from :func:`gaussian_floors` with ``SF``; absolute units.
    """
    return np.sqrt(floors["sensor_sq"] + pca_tail(floors["explained_eigs"], p))


def sinusoid_floors(grid, w, f_max: float, *, nodes: int = 16) -> dict:
    r"""Population output spectrum of :math:`v=\sin 2\pi fx`, :math:`f\sim U(0,f_{max})`
    (the NOMAD antiderivative family, :class:`opdiff.functions.Sinusoids`) on ``grid``.

    The mean :math:`\mathbb E v` and the second moments :math:`\mathbb E[v(x)v(y)]` are
    integrals over ``f``, taken by composite ``nodes``-point Gauss--Legendre with
    ``max(200, 40 f_max)`` panels (1/40 of a period of the fastest wave over [0, 1] each);
    the centred covariance :math:`C` then gives the eigenvalues of :math:`W^{1/2}CW^{1/2}`.

    Returns:
        ``eigs`` (descending, clipped at 0) and ``second_moment``
        (:math:`\mathbb E\|v\|_W^2`, mean included), as :func:`gaussian_floors`.
    """
    x = np.asarray(grid, np.float64)
    w = np.asarray(w, np.float64)
    panels = max(200, int(40 * f_max))
    t, tw = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(0.0, f_max, panels + 1)
    half = np.diff(edges)[:, None] / 2
    fq = ((edges[:-1, None] + half) + half * t[None, :]).ravel()
    fw = (half * tw[None, :]).ravel() / f_max
    V = np.sin(2 * np.pi * fq[:, None] * x[None, :])
    mean = fw @ V
    cov = (V * fw[:, None]).T @ V - np.outer(mean, mean)
    sw = np.sqrt(w)
    eigs = np.clip(np.linalg.eigvalsh(sw[:, None] * cov * sw[None, :])[::-1], 0.0, None)
    return dict(eigs=eigs, second_moment=float(np.sum(w * (fw @ V**2))))


def pca_tail(eigs, p) -> np.ndarray:
    r""":math:`\sum_{k>p}\lambda_k` for each ``p`` (float64; negative round-off clipped to 0):
    the squared PCA floor, for any non-negative integer ``p`` (``p = 0``: the trace)."""
    lam = np.clip(np.sort(np.asarray(eigs, np.float64))[::-1], 0.0, None)
    t = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])
    return t[np.minimum(np.asarray(p), lam.size)]


# --- errors ------------------------------------------------------------------------------------


def sq_errors(pred, true, w) -> np.ndarray:
    r"""Per-function :math:`\|v-\hat v\|_w^2=\sum_jw_j(v_j-\hat v_j)^2` in float64 (over the
    last axis; ``pred`` and ``true`` broadcast)."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    return np.sum(np.asarray(w, np.float64) * d * d, axis=-1)


def bochner(sq) -> float:
    r""":math:`(\frac1n\sum_i\|e_i\|^2)^{1/2}` from per-function squared errors."""
    return float(np.sqrt(np.mean(sq)))


def relative_bochner(sq, norm) -> tuple[np.ndarray, np.ndarray]:
    r"""Relative Bochner error :math:`e=(\overline{\|e_i\|^2})^{1/2}/\|v\|` over the last axis
    of ``sq`` and its standard error by the delta method through the square root,

    .. math:: \mathrm{se}(e)=e\,\frac{\tfrac12\,s}{\overline{\|e_i\|^2}\sqrt n},

    ``s`` the sample standard deviation (``ddof=1``) of the ``n`` squared errors.

    Returns:
        ``(e, se)``, each of ``sq``'s shape without the last axis.
    """
    sq = np.asarray(sq, np.float64)
    rel = np.sqrt(sq.mean(-1)) / norm
    return rel, rel * 0.5 * sq.std(-1, ddof=1) / (sq.mean(-1) * np.sqrt(sq.shape[-1]))


def mc_rtol(sq, z: float = 3.0) -> float:
    r"""Relative Monte-Carlo slack of the Bochner error :math:`(\overline{\|e\|^2})^{1/2}`.

    With :math:`\rho=z\,\mathrm{se}(\overline{\|e\|^2})/\overline{\|e\|^2}` (``z`` standard
    errors of the mean of ``sq``), the square root of the lower end
    :math:`\overline{\|e\|^2}(1-\rho)` is the error times :math:`\sqrt{1-\rho}`; the slack is
    :math:`\min(0.9,\,1-\sqrt{\max(0,1-\rho)})`.
    """
    sq = np.asarray(sq, np.float64)
    rel = z * sq.std(ddof=1) / np.sqrt(sq.size) / max(sq.mean(), 1e-300)
    return float(min(0.9, 1.0 - np.sqrt(max(0.0, 1.0 - rel))))


def componentwise_floor(outputs, pred, weights, max_p: int, p: int) -> dict:
    r"""PCA floor of a ``p``-basis network with one affine ``p``-space per output component,
    beside its Bochner error on the same functions.

    With components :math:`c`, the floor squared is :math:`\sum_c\sum_{k>p}\lambda^{(c)}_k`
    (the components' spaces are independent), the Bochner error
    :math:`(\frac1n\sum_i\sum_c\|v_i^{(c)}-\hat v_i^{(c)}\|_w^2)^{1/2}`.

    Args:
        outputs, pred: ``[n, P]`` or ``[n, P, K]``.
        weights: ``[P]`` quadrature weights; ``max_p``: the floor curve's last ``p``.

    Returns:
        ``ps`` (``1..max_p``), ``floor`` (the curve), ``floor_p`` (at ``p``), ``bochner``,
        ``rms_norm`` :math:`(\sum_c\mathbb E\|v^{(c)}\|^2)^{1/2}` (empirical).
    """
    v = np.asarray(outputs, np.float64)
    e = np.asarray(pred, np.float64) - v
    if v.ndim == 2:
        v, e = v[..., None], e[..., None]
    ps = np.arange(1, max_p + 1)
    floor_sq = np.zeros(ps.size)
    second = 0.0
    for c in range(v.shape[2]):
        res = pca(v[:, :, c], weights)
        floor_sq += pca_floor(res.eigenvalues, ps) ** 2
        second += res.second_moment
    sq = np.sum(weights[None, :, None] * e**2, axis=(1, 2))
    return dict(ps=ps, floor=np.sqrt(floor_sq), floor_p=float(np.sqrt(floor_sq[p - 1])),
                bochner=float(np.sqrt(sq.mean())), rms_norm=float(np.sqrt(second)))


# --- sensors -----------------------------------------------------------------------------------


def decoder_errors(u, outputs, at_sensors, sensors, grid, decoder: str, operator) -> dict:
    r"""What reading ``u`` through its sensor values costs, per function (Lu et al. 2021, Thm 1).

    With :math:`u_m` the ``decoder`` interpolant (:func:`opdiff.functions.interpolate`)
    through the sensor values back on ``grid``:

    * ``kappa``: :math:`\kappa_i=\max_x|u_i-u_{m,i}|` (``[n]``);
    * ``sup``: :math:`\max_x|G(u_i)-G(u_{m,i})|` (``[n]``), to set beside
      :func:`gronwall_sensor_bound` of :math:`\kappa_i`;
    * ``rms``: the root mean square of :math:`G(u)-G(u_m)` over every function and grid
      point: the error a perfect network reading these sensors through that decoder still makes.

    Args:
        u: ``[n, N]`` functions on ``grid``; ``outputs``: ``[n, N]`` :math:`G(u)` on ``grid``.
        at_sensors: ``[n, m]`` their values at ``sensors``.
        operator: ``G`` on ``[n, N]`` grid values (e.g.
            :func:`opdiff.operators.integral.antiderivative` on ``grid``).
    """
    import jax.numpy as jnp

    from opdiff import functions

    u_m = np.asarray(functions.interpolate(at_sensors, sensors, grid, decoder))
    kappa = np.max(np.abs(np.asarray(u) - u_m), axis=1)
    g_err = np.asarray(outputs) - np.asarray(operator(jnp.asarray(u_m)))
    return dict(kappa=kappa, sup=np.max(np.abs(g_err), axis=1),
                rms=float(np.sqrt(np.mean(g_err.astype(np.float64) ** 2))))



def sensor_theory(m_values, grid, factor, u, A, w) -> dict:
    r"""Sensor-count theory for the antiderivative of a Gaussian field, for every ``m``.

    With :math:`I_m` the piecewise-linear interpolant through ``m`` equispaced sensors
    (:func:`opdiff.functions.sensor_matrix`), on the samples ``u`` and in the population:

    * ``kappa``: :math:`\kappa(m)=\overline{\max_x|u-I_mu|}` (mean over the samples);
    * ``gronwall_ratio``: :math:`\max_i\max_x|G(u_i)-G(I_mu_i)|/\mathrm{Gr}(\kappa_i)`, each
      sample against :func:`gronwall_sensor_bound` of its own :math:`\kappa_i` (``c = 1``);
    * ``plugin_test``: Bochner error of "interpolate, then apply G" on the samples,
      ``plugin_pop`` the same in the population,
      :math:`\|W^{1/2}(B-AI_mSF)\|_F`;
    * ``bayes``: the Bayes floor :math:`(\mathbb E\|G(u)-\mathbb E[G(u)|Su]\|^2)^{1/2}`
      (:func:`gaussian_floors`).

    Args:
        m_values: ``[k]`` sensor counts (>= 2).
        grid: ``[N]`` fine grid of the field; ``factor``: ``[N, r]`` its factor ``F``.
        u: ``[n, N]`` samples on the fine grid.
        A: ``[P, N]`` output map (antiderivative rows); ``w``: ``[P]`` output weights.

    Returns:
        ``kappa``, ``gronwall_ratio``, ``plugin_test``, ``plugin_pop``, ``bayes`` (each
        ``[k]``) and ``second_moment``, ``eigs`` of the outputs.
    """
    from opdiff import functions

    x = np.asarray(grid, np.float64)
    F = np.asarray(factor)
    B = A @ F
    pop = gaussian_floors(B, w)
    h = np.diff(x)
    out = {k: [] for k in ("kappa", "gronwall_ratio", "plugin_test", "plugin_pop", "bayes_sq")}
    for m in m_values:
        m = int(m)
        sensors = functions.equispaced_sensors(m)
        S = functions.sensor_matrix(x, sensors, "linear")  # [m, N]
        P = functions.sensor_matrix(sensors, x, "linear")  # [N, m]: interpolate back
        d = u - (u @ S.T) @ P.T  # u - I_m u on the fine grid, [n, N]
        kappa_i = np.max(np.abs(d), axis=1)
        # G(u) - G(I_m u) on the fine grid: cumulative trapezoid of the difference
        gd = np.concatenate([np.zeros((d.shape[0], 1)),
                             np.cumsum(h * (d[:, 1:] + d[:, :-1]) / 2, axis=1)], axis=1)
        bound_i = gronwall_sensor_bound(kappa_i, 1.0, float(x[-1] - x[0]))
        out["kappa"].append(kappa_i.mean())
        out["gronwall_ratio"].append(np.max(np.max(np.abs(gd), axis=1) / bound_i))
        out["plugin_test"].append(bochner(sq_errors(d @ A.T, 0.0, w)))
        out["plugin_pop"].append(float(np.sqrt(np.sum(w[:, None] * (B - (A @ P) @ (S @ F)) ** 2))))
        out["bayes_sq"].append(gaussian_floors(B, w, SF=S @ F)["sensor_sq"])
    out = {k: np.asarray(v) for k, v in out.items()}
    out["bayes"] = np.sqrt(out.pop("bayes_sq"))
    out["second_moment"] = pop["second_moment"]
    out["eigs"] = pop["eigs"]
    return out
