r"""Spectral analysis of images and signals: radially averaged power spectra, power-law fits,
and the frequency where a signal spectrum meets a noise floor. Pure NumPy functions (float64).

**Convention.** For a real image :math:`u` of :math:`H\times W=N` pixels with DFT
:math:`\mathcal Fu` (``numpy.fft.fft2``), the power per mode is :math:`|\mathcal Fu(k)|^2/N`.
White noise :math:`N(0,\sigma^2)` then has power :math:`\sigma^2` at every mode, and by
Parseval the power summed over all modes divided by :math:`N` is the mean of :math:`u^2`. In
the convention of :class:`opdiff.functions.PeriodicPowerLawField` (:math:`P(k)=\mathbb
E|\mathcal Fu(k)/N|^2`) the expected power per mode is :math:`N\,P(k)`. Equivalently it is
the expected square of the mode's unitary-Hartley coefficient (the ``"dft"`` basis of
:mod:`opdiff.diffusion.transforms`), so for a process diagonal in that basis,
:math:`\mathbb E|\mathcal Fx_t(k)|^2/N=a_t(k)^2|\mathcal Fx_0(k)|^2/N+s_t(k)^2`.

**Radial average** (:func:`radial_average`, :func:`rapsd`). A mode :math:`k=(k_1,k_2)`
(``fftfreq`` order) has frequency :math:`f=\sqrt{(k_1/H)^2+(k_2/W)^2}` cycles per pixel; it
falls in the annulus :math:`r=\operatorname{round}(f\min(H,W))` — for a square image
:math:`r=\operatorname{round}|k|`, the radius in cycles per image. Annuli
:math:`r=1,\dots,\lfloor\min(H,W)/2\rfloor` are kept (the DC :math:`r=0` is dropped, and so are
the corner modes beyond the inscribed circle); annulus :math:`r` is reported at the frequency
:math:`r/\min(H,W)` cycles per pixel. The RAPSD of a batch is the average over images and over
the modes of each annulus. An 8×8 image has only 4 annuli, a 28×28 one 14, 64×64 32.
The coefficients of any basis (the DCT too) are binned by their radial frequency in
``n_bins`` equal-width bins over :math:`[0,f_{\max}]`, DC and corners kept
(:func:`radial_bins` ``bins="linear"``, e.g. a per-coefficient KL of
:mod:`opdiff.diffusion.oracle`); :func:`radial_average` reduces over either binning.

1-D signals :math:`[\dots,N]` go through :func:`rapsd_1d`: modes :math:`k=1..\lfloor N/2\rfloor`
(:math:`\pm k` carry the same power for real signals), frequency :math:`k/N`.

**Power-law fit** (:func:`fit_spectral_exponent`): Dieleman's protocol (2024, "Diffusion is
spectral autoregression"): take logs, resample the log-RAPSD at ``n_points`` log-spaced
frequencies by linear interpolation in log-log space (so that the many high-frequency annuli do
not dominate), and fit a line by least squares: :math:`\log P\approx b-\hat\alpha\log f`.

**Cut-off** (:func:`snr_cutoff`): the largest frequency where the signal spectrum is at least
the noise spectrum (SNR :math:`\ge1`), interpolated linearly in log-log space between the two
annuli that bracket the crossing; exact when both spectra are power laws. For
:math:`P(f)=Cf^{-\alpha}` over a flat floor :math:`\sigma^2`: :math:`f^*=(C/\sigma^2)^{1/\alpha}`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.optimize

__all__ = [
    "BINNINGS",
    "annulus_index",
    "cutoff_max_increase",
    "fft_radial_frequency",
    "fit_spectral_exponent",
    "fit_spectral_exponent_jackknife",
    "power_law_cutoff",
    "power_law_rapsd_constant",
    "power_per_mode",
    "radial_average",
    "radial_bins",
    "rapsd",
    "rapsd_1d",
    "snr_cutoff",
]


def _shape2(shape) -> tuple[int, int]:
    h, w = (int(v) for v in shape)
    if h < 2 or w < 2:
        raise ValueError(f"images must be at least 2x2, got {h}x{w}")
    return h, w


def fft_radial_frequency(shape) -> np.ndarray:
    r"""The radial frequency :math:`f=\sqrt{(k_1/H)^2+(k_2/W)^2}` in cycles per pixel of every
    mode of an ``H x W`` FFT grid (``fftfreq`` order), float64 ``[H, W]``."""
    h, w = _shape2(shape)
    return np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)


BINNINGS = ("annuli", "linear")


def radial_bins(freqs, *, bins: str = "annuli", n_bins: int | None = None,
                side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Assign every mode of radial frequency ``freqs`` (cycles per pixel, any shape) to a bin.

    Two definitions, chosen by ``bins``:

    - ``"annuli"`` (the RAPSD; module docstring): annulus :math:`r=\operatorname{round}(f\cdot
      \mathrm{side})`, annuli :math:`r=1..` ``n_bins`` kept (default ``side // 2``), reported at
      :math:`r/\mathrm{side}`; the DC (:math:`r=0`) and modes beyond the last annulus (the
      corners of an FFT grid) get index ``-1``. ``side`` is required (``min(H, W)`` for an FFT
      grid).
    - ``"linear"``: ``n_bins`` equal-width bins over :math:`[0,\max f]` (the top edge nudged up
      by 1e-9 relative so the largest frequency is inside), reported at the bin centres; every
      mode is kept, the DC in the first bin. For any basis's frequencies (e.g.
      :func:`opdiff.diffusion.transforms.radial_frequency`, which includes the DCT); ``n_bins`` is
      required.

    Returns:
        ``(index, frequencies)``: the bin of every mode (``freqs``' shape, int64, ``-1`` for a
        dropped mode) and the ``[n_bins]`` bin frequencies.

    Raises:
        ValueError: for an unknown ``bins``, a missing or non-positive ``side`` / ``n_bins``.
    """
    f = np.asarray(freqs, dtype=np.float64)
    if bins == "annuli":
        if side is None or int(side) < 1:
            raise ValueError(f"bins='annuli' needs side >= 1 (min(H, W) of an FFT grid), "
                             f"got {side!r}")
        side = int(side)
        n_bins = side // 2 if n_bins is None else int(n_bins)
        r = np.rint(f * side).astype(np.int64)
        index = np.where((r >= 1) & (r <= n_bins), r - 1, -1)
        return index, np.arange(1, n_bins + 1) / side
    if bins == "linear":
        if n_bins is None or int(n_bins) < 1:
            raise ValueError(f"bins='linear' needs n_bins >= 1, got {n_bins!r}")
        n_bins = int(n_bins)
        edges = np.linspace(0, f.max() * (1 + 1e-9), n_bins + 1)
        index = np.clip(np.digitize(f, edges) - 1, 0, n_bins - 1)
        return index, 0.5 * (edges[1:] + edges[:-1])
    raise ValueError(f"bins must be one of {BINNINGS}, got {bins!r}")


def _bin_matrix(index: np.ndarray, n_bins: int, statistic: str):
    """``[n_modes, n_bins]`` matrix: column ``b`` is the indicator of bin ``b`` (``"sum"``) or
    it over the bin's size (``"mean"``); and the bin sizes."""
    idx = index.ravel()
    rows = np.flatnonzero(idx >= 0)
    counts = np.bincount(idx[rows], minlength=n_bins).astype(np.float64)
    mat = np.zeros((idx.size, n_bins))
    if statistic == "mean":
        mat[rows, idx[rows]] = 1.0 / counts[idx[rows]]
    elif statistic == "sum":
        mat[rows, idx[rows]] = 1.0
    else:
        raise ValueError(f"statistic must be 'mean' or 'sum', got {statistic!r}")
    return mat, counts


@functools.lru_cache(maxsize=32)
def _annuli(h: int, w: int):
    index, freqs = radial_bins(fft_radial_frequency((h, w)), bins="annuli", side=min(h, w))
    avg, counts = _bin_matrix(index, len(freqs), "mean")
    for a in (index, counts, avg, freqs):
        a.setflags(write=False)
    return index, counts, avg, freqs


def annulus_index(shape) -> np.ndarray:
    """The annulus of every mode of an ``H x W`` FFT grid (``fftfreq`` order): ``r - 1`` for
    annulus ``r`` in ``1..min(H,W)//2``, ``-1`` for the DC and the dropped corner modes."""
    return _annuli(*_shape2(shape))[0].copy()


def radial_average(values, freqs=None, *, bins: str | None = None, n_bins: int | None = None,
                   statistic: str = "mean", return_frequencies: bool = True):
    """Reduce a per-mode quantity over radial-frequency bins (:func:`radial_bins`): the one
    radial binning of opdiff.

    Without ``freqs``, ``values`` ``[..., H, W]`` is an FFT grid (``fftfreq`` order) binned in
    the annuli of the module docstring (``bins`` defaults to ``"annuli"``), e.g.
    ``radial_average(N * field.spectrum())`` is the expected RAPSD of a
    :class:`~opdiff.functions.PeriodicPowerLawField` (the coefficients of the ``"dft"`` basis
    of :mod:`opdiff.diffusion.transforms` are such a grid). With ``freqs`` (the radial frequency of
    every mode, the trailing shape of ``values``; e.g.
    :func:`opdiff.diffusion.transforms.radial_frequency` of a DCT basis) ``bins`` defaults to
    ``"linear"``. ``"linear"`` bins number half the largest side unless ``n_bins`` is given.
    Leading axes are kept.

    Args:
        statistic: ``"mean"`` (NaN for an empty bin) or ``"sum"`` over each bin's modes.

    Returns:
        ``(freqs, reduced)`` (bin frequencies in cycles per pixel, ``[..., n_bins]``), or just
        the reduced values when ``return_frequencies`` is False.
    """
    v = np.asarray(values, dtype=np.float64)
    if freqs is None:
        bins = "annuli" if bins is None else bins
        if v.ndim < 2:
            raise ValueError(f"values must have shape [..., H, W], got {v.shape}")
        h, w = _shape2(v.shape[-2:])
        if bins == "annuli" and n_bins is None and statistic == "mean":
            _, counts, mat, centres = _annuli(h, w)
        else:
            if bins == "linear" and n_bins is None:
                n_bins = max(h, w) // 2
            index, centres = radial_bins(fft_radial_frequency((h, w)), bins=bins,
                                         n_bins=n_bins, side=min(h, w))
            mat, counts = _bin_matrix(index, len(centres), statistic)
        nd = 2
    else:
        f = np.asarray(freqs, dtype=np.float64)
        nd = f.ndim
        if v.shape[v.ndim - nd:] != f.shape or nd == 0:
            raise ValueError(f"values must have shape [..., *{f.shape}] to match freqs, got "
                             f"{v.shape}")
        bins = "linear" if bins is None else bins
        if bins == "linear" and n_bins is None:
            n_bins = max(max(f.shape) // 2, 1)
        side = min(f.shape) if bins == "annuli" else None
        index, centres = radial_bins(f, bins=bins, n_bins=n_bins, side=side)
        mat, counts = _bin_matrix(index, len(centres), statistic)
    out = v.reshape(*v.shape[: v.ndim - nd], -1) @ mat
    if statistic == "mean" and np.any(counts == 0):
        out = np.where(counts > 0, out, np.nan)
    return (centres.copy(), out) if return_frequencies else out


def power_per_mode(images) -> np.ndarray:
    r"""The power :math:`|\mathcal Fu(k)|^2/N` of every DFT mode of real images ``[..., H, W]``
    (``numpy.fft.fft2`` order, float64; :math:`N=HW`): white noise :math:`N(0,\sigma^2)` has
    expected power :math:`\sigma^2` at every mode (module docstring)."""
    u = np.asarray(images, dtype=np.float64)
    if u.ndim < 2:
        raise ValueError(f"images must have shape [..., H, W], got {u.shape}")
    h, w = _shape2(u.shape[-2:])
    return np.abs(np.fft.fft2(u)) ** 2 / (h * w)


def rapsd(images, *, return_frequencies: bool = True, average: bool = True):
    r"""Radially averaged power spectral density of real images ``[..., H, W]``.

    The power per mode is :math:`|\mathrm{fft2}(u)|^2/(HW)` (white noise of variance
    :math:`\sigma^2` gives :math:`\sigma^2`), averaged over annuli :math:`r=1..\lfloor
    \min(H,W)/2\rfloor` (module docstring).

    Args:
        images: real array ``[..., H, W]`` (numpy or jax).
        return_frequencies: also return the annulus frequencies (cycles per pixel).
        average: average over all leading axes (default); else keep them: ``[..., n_bins]``.

    Returns:
        ``(freqs [n_bins], psd)`` or ``psd``; ``psd`` is ``[n_bins]`` when ``average``.
    """
    u = np.asarray(images, dtype=np.float64)
    if u.ndim < 2:
        raise ValueError(f"images must have shape [..., H, W], got {u.shape}")
    h, w = _shape2(u.shape[-2:])
    power = power_per_mode(u)
    if average and power.ndim > 2:
        power = power.reshape(-1, h, w).mean(axis=0)
    return radial_average(power, return_frequencies=return_frequencies)


def rapsd_1d(signals, *, return_frequencies: bool = True, average: bool = True):
    r"""Power spectral density of real 1-D signals ``[..., N]``: :math:`|\mathrm{fft}(u)_k|^2/N`
    at :math:`k=1..\lfloor N/2\rfloor` (frequency :math:`k/N` cycles per sample), averaged over
    the leading axes when ``average``. White noise :math:`N(0,\sigma^2)` gives :math:`\sigma^2`.
    """
    u = np.asarray(signals, dtype=np.float64)
    if u.ndim < 1 or u.shape[-1] < 2:
        raise ValueError(f"signals must have shape [..., N] with N >= 2, got {u.shape}")
    n = u.shape[-1]
    power = np.abs(np.fft.fft(u, axis=-1)[..., 1: n // 2 + 1]) ** 2 / n
    if average and power.ndim > 1:
        power = power.reshape(-1, power.shape[-1]).mean(axis=0)
    freqs = np.arange(1, n // 2 + 1) / n
    return (freqs, power) if return_frequencies else power


def fit_spectral_exponent(freqs, psd, *, n_points: int = 20, f_min=None, f_max=None):
    r"""Fit :math:`\mathrm{psd}\approx e^{b}f^{-\hat\alpha}` in log-log space (Dieleman's protocol).

    The log-PSD is resampled at ``n_points`` log-spaced frequencies between ``f_min`` and
    ``f_max`` (default: the whole range) by linear interpolation in log-log space, then a
    straight line is fitted by ordinary least squares.

    Args:
        freqs: increasing positive frequencies ``[F]``, ``F >= 2``.
        psd: positive spectrum values ``[F]``.

    Returns:
        ``(alpha_hat, intercept)``: the exponent (positive for a decaying spectrum) and the
        natural-log intercept :math:`b` (the fitted log-PSD at :math:`f=1`).
    """
    f = np.asarray(freqs, dtype=np.float64)
    p = np.asarray(psd, dtype=np.float64)
    if f.ndim != 1 or p.shape != f.shape or f.size < 2:
        raise ValueError(f"freqs and psd must be 1-D of the same length >= 2, got "
                         f"{f.shape} and {p.shape}")
    if not (np.all(f > 0) and np.all(np.diff(f) > 0)):
        raise ValueError("freqs must be positive and strictly increasing")
    if not np.all(np.isfinite(p) & (p > 0)):
        raise ValueError("psd must be finite and positive")
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    lo = f[0] if f_min is None else float(f_min)
    hi = f[-1] if f_max is None else float(f_max)
    if not f[0] <= lo < hi <= f[-1]:
        raise ValueError(f"need freqs[0] <= f_min < f_max <= freqs[-1], got {lo}, {hi}")
    x = np.linspace(np.log(lo), np.log(hi), int(n_points))
    y = np.interp(x, np.log(f), np.log(p))
    slope, intercept = np.polyfit(x, y, 1)
    return float(-slope), float(intercept)


def snr_cutoff(freqs, signal_psd, noise_psd, *, above=np.nan, below=np.nan):
    r"""The largest frequency where ``signal_psd >= noise_psd`` (SNR :math:`\ge1`).

    Between the last annulus with SNR :math:`\ge1` and the next one, the crossing is found by
    linear interpolation of :math:`\log(\mathrm{signal}/\mathrm{noise})` in :math:`\log f`.
    Vectorised over leading axes: ``signal_psd`` ``[..., F]``, ``noise_psd`` broadcastable to it
    (a scalar noise floor, one floor per row ``[..., 1]``, or a spectrum).

    Args:
        above: returned when the SNR is :math:`\ge1` at the highest frequency (the cut-off is
            at or beyond the band; NaN by default, ``np.inf`` for ordering).
        below: returned when the SNR is :math:`<1` everywhere (NaN by default, 0 for ordering).

    Returns:
        the cut-off frequencies ``[...]`` (a float for 1-D input).
    """
    f = np.asarray(freqs, dtype=np.float64)
    s = np.asarray(signal_psd, dtype=np.float64)
    if f.ndim != 1 or s.shape[-1:] != f.shape or f.size < 2:
        raise ValueError(f"signal_psd must be [..., F] with freqs [F], F >= 2, got "
                         f"{s.shape} and {f.shape}")
    if not (np.all(f > 0) and np.all(np.diff(f) > 0)):
        raise ValueError("freqs must be positive and strictly increasing")
    noise = np.broadcast_to(np.asarray(noise_psd, dtype=np.float64), s.shape)
    if np.any(noise <= 0) or np.any(s < 0):
        raise ValueError("noise_psd must be positive and signal_psd non-negative")
    with np.errstate(divide="ignore"):
        d = np.log(s) - np.log(noise)  # -inf where the signal is 0
    ok = d >= 0
    n_f = f.size
    last = n_f - 1 - np.argmax(ok[..., ::-1], axis=-1)  # the last index with SNR >= 1
    none = ~ok.any(axis=-1)
    top = ok[..., -1]
    i = np.clip(last, 0, n_f - 2)
    lf = np.log(f)
    d0 = np.take_along_axis(d, i[..., None], -1)[..., 0]
    d1 = np.take_along_axis(d, i[..., None] + 1, -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = d0 / (d0 - d1)  # in [0, 1); 0 when the next annulus has no signal (d1 = -inf)
    out = np.exp(lf[i] + w * (lf[i + 1] - lf[i]))
    out = np.where(none, below, np.where(top, above, out))
    return float(out) if out.ndim == 0 else out


def fit_spectral_exponent_jackknife(freqs, psds, *, n_points: int = 20, f_min=None,
                                    f_max=None) -> tuple[float, float]:
    r""":func:`fit_spectral_exponent` of the mean of ``psds [n, F]`` (one spectrum per image)
    and its jackknife standard error.

    With :math:`\hat\alpha_{(i)}` the exponent of the mean without image :math:`i`,
    :math:`\mathrm{se}^2=\frac{n-1}{n}\sum_i(\hat\alpha_{(i)}-\bar\alpha_{(\cdot)})^2`: the
    Monte-Carlo error of the fitted exponent of an average of ``n`` independent spectra (the
    fit is a smooth function of the mean, so the jackknife applies).

    Returns:
        ``(alpha_hat, se)``.

    Raises:
        ValueError: fewer than two spectra (and whatever :func:`fit_spectral_exponent` raises).
    """
    p = np.asarray(psds, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"psds must be [n, F] with n >= 2, got shape {p.shape}")
    n = p.shape[0]
    kw = dict(n_points=n_points, f_min=f_min, f_max=f_max)
    alpha = fit_spectral_exponent(freqs, p.mean(0), **kw)[0]
    loo = (p.sum(0) - p) / (n - 1)
    a = np.array([fit_spectral_exponent(freqs, row, **kw)[0] for row in loo])
    return alpha, float(np.sqrt((n - 1) / n * np.sum((a - a.mean()) ** 2)))


def power_law_rapsd_constant(field) -> float:
    r"""The constant :math:`C` of the continuum law :math:`Cf^{-\alpha}` that the expected RAPSD
    of a square :class:`~opdiff.functions.PeriodicPowerLawField` follows.

    The field has :math:`\mathbb E|\mathcal Fu(k)/N|^2=P(k)=c(|k|^2+k_0^2)^{-\alpha/2}`, so
    the expected power per mode is :math:`NP(k)\approx Nc|k|^{-\alpha}=Nc\,n^{-\alpha}
    f^{-\alpha}` at :math:`f=|k|/n` cycles/pixel (:math:`k_0` negligible): :math:`C=Nc\,n^{-\alpha}`,
    with :math:`c` read off the spectrum at a mode with :math:`|k|=1`.

    Args:
        field: a 2-D :class:`~opdiff.functions.PeriodicPowerLawField` of side :math:`n`.
    """
    shape = field.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"need a square 2-D field, got shape {shape}")
    k_any = np.unravel_index(np.argmax(field.wavenumbers() == 1), shape)
    c = field.spectrum()[k_any] * (1 + field.k0**2) ** (field.alpha / 2)
    n = shape[0]
    return n * n * c * n ** (-field.alpha)


def power_law_cutoff(C, alpha: float, floor, *, heat_time=0.0):
    r"""The frequency :math:`f^*` where :math:`e^{-2(2\pi f)^2\tau}Cf^{-\alpha}=\sigma^2`
    (``floor``): the SNR = 1 cut-off of a power law, blurred by the heat semigroup at heat time
    :math:`\tau` (``heat_time``), over a flat noise floor.

    For :math:`\tau=0` it is the closed form :math:`f^*=(C/\sigma^2)^{1/\alpha}` (arrays
    broadcast); for :math:`\tau>0` the left side minus the right is strictly decreasing in
    :math:`\log f`, and the root is found by Brent's method on :math:`\log f\in[-40,10]`
    (``xtol`` 1e-14; scalars only).

    Args:
        C: the power law's constant (e.g. :func:`power_law_rapsd_constant` times :math:`a_t^2`).
        alpha: its exponent :math:`>0`.
        floor: the noise power :math:`\sigma^2>0`.
        heat_time: :math:`\tau\ge0`.
    """
    if np.all(np.asarray(heat_time) == 0):
        return (C / floor) ** (1 / alpha)
    C, alpha, tau, sigma2 = float(C), float(alpha), float(heat_time), float(floor)

    def g(lf):  # strictly decreasing in lf = log f
        return (math.log(C) - alpha * lf - 2 * (2 * math.pi) ** 2 * tau * math.exp(2 * lf)
                - math.log(sigma2))

    return math.exp(scipy.optimize.brentq(g, -40.0, 10.0, xtol=1e-14))


def cutoff_max_increase(cutoffs) -> float:
    r"""The largest ratio :math:`f^*_{i+1}/f^*_i` of consecutive cut-offs, in the order
    :math:`+\infty>f>0` (cut-offs from :func:`snr_cutoff` with ``above=inf``, ``below=0``).

    Pairs that cannot increase (:math:`f_i=\infty` or :math:`f_{i+1}=0`) are skipped; a pair
    that rises from 0 or to :math:`\infty` counts as :math:`\infty`. A non-increasing sequence
    gives a value :math:`\le1` (0 when every pair is skipped).
    """
    f = np.asarray(cutoffs, dtype=np.float64)
    worst = 0.0
    for i in range(len(f) - 1):
        a, b = f[i], f[i + 1]
        if np.isinf(a) or b == 0:
            continue
        ratio = math.inf if (np.isinf(b) or a == 0) else b / a
        worst = max(worst, ratio)
    return worst
