"""Drift and line-jitter correction of an image series: ground truth from a simulated HAADF."""

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from atomine import simulate
from atomine.correlate.drift import correct_series
from atomine.errors import InputError

N, H, W, PAD = 8, 192, 192, 24


def _truth(seed=0):
    """Simulated perovskite HAADF with aperiodic content (dopants, a thickness blob, a void), 0.02 nm/px."""
    img = simulate.make("haadf-perovskite", seed).data.transpose("y", "x")
    v = np.asarray(img.values, float)
    yy, xx = np.mgrid[: v.shape[0], : v.shape[1]] / v.shape[0]
    v = v * (1 + 0.6 * np.exp(-((xx - 0.35) ** 2 + (yy - 0.4) ** 2) / 0.01)) \
        * (1 - 0.5 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.25) ** 2) / 0.003))
    return v, float(img.x[1] - img.x[0])


def _series(jitter_sd=0.5, noise=0.05, seed=0):
    """Frames seeing the truth crop at reference (y, x) from raw (y + dy, x + dx + line[row]), plus noise."""
    v, px = _truth(seed)
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.uniform(-0.7, 0.7, (N, 2)), axis=0)
    drift -= drift[0]
    lines = jitter_sd * rng.standard_normal((N, H))
    lines[0] = 0.0 if jitter_sd == 0 else lines[0]
    yy, xx = np.mgrid[:H, :W].astype(float)
    frames = []
    for f in range(N):
        # raw pixel (i, j) shows truth at (i - dy, j - dx - line[i]) (reference origin at PAD)
        r = yy + PAD - drift[f, 0]
        c = xx + PAD - drift[f, 1] - lines[f][:, None]
        frames.append(ndimage.map_coordinates(v, [r, c], order=5, mode="nearest"))
    frames = np.array(frames)
    frames += noise * frames.std() * rng.standard_normal(frames.shape)
    da = xr.DataArray(frames, dims=("frame", "y", "x"), coords={
        "y": xr.Variable("y", np.arange(H) * px, attrs={"units": "nm"}),
        "x": xr.Variable("x", np.arange(W) * px, attrs={"units": "nm"})})
    ref = v[PAD: PAD + H, PAD: PAD + W]
    return da, drift, lines, ref


def _lattice_power(img):
    """Sharpness: power of the 40 strongest Fourier peaks (lattice reflections) weighted by |k|^2, so the
    high orders that drift and jitter wash out count most."""
    f = np.abs(np.fft.fftshift(np.fft.fft2((img - img.mean()) * np.outer(np.hanning(H), np.hanning(W))))) ** 2
    ky, kx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(H)), np.fft.fftshift(np.fft.fftfreq(W)), indexing="ij")
    k2 = ky**2 + kx**2
    f[k2 < (4 / H) ** 2] = 0  # DC and the window's own spread
    peaks = (f == ndimage.maximum_filter(f, size=5)) & (f > 0)
    top = np.argsort(f[peaks])[-40:]
    return float((f[peaks] * k2[peaks])[top].sum())


def _gauge(drift, lines):
    """True shifts in the reported gauge: line offsets minus their mean over frames at each sample row
    (unobservable from the series), then minus each frame's mean line (carried by the rigid dx)."""
    rows = np.arange(H, dtype=float)
    common = np.mean([np.interp(rows + drift[f, 0], rows, lines[f]) for f in range(N)], axis=0)
    g = lines - np.array([np.interp(rows - drift[f, 0], rows, common) for f in range(N)])
    rigid = drift + np.c_[np.zeros(N), g.mean(1)]
    return rigid - rigid[0], g - g.mean(1, keepdims=True)


def _errors(table, drift, lines):
    true_rigid, true_lines = _gauge(drift, lines)
    d = table.drop_duplicates("frame")[["dy_px", "dx_px"]].to_numpy() - true_rigid
    rigid = float(np.sqrt(np.mean(np.sum(d**2, axis=1))))
    est = table["line_dx_px"].to_numpy().reshape(N, H)
    return rigid, float(np.sqrt(np.mean((est - true_lines) ** 2))), est


def test_drift_and_line_jitter_recovered():
    frames, drift, lines, truth = _series()
    before = frames.copy(deep=True)
    avg, table = correct_series(frames)
    rigid, line, _ = _errors(table, drift, lines)
    naive = frames.mean("frame").values
    corr = [np.corrcoef(a[8:-8, 8:-8].ravel(), truth[8:-8, 8:-8].ravel())[0, 1] for a in (naive, avg.values)]
    print(f"rigid rms {rigid:.3f} px, line rms {line:.3f} px, lattice power corrected/naive "
          f"{_lattice_power(avg.values) / _lattice_power(naive):.2f}, corr naive {corr[0]:.3f} corrected {corr[1]:.4f}")
    assert rigid <= 0.1
    assert line <= 0.2
    assert _lattice_power(avg.values) > 1.1 * _lattice_power(naive)
    assert corr[1] > 0.99 and corr[1] > corr[0]
    assert set(table.columns) >= {"frame", "line", "dy_px", "dx_px", "line_dx_px", "dy", "dx"}
    assert np.allclose(table["dx"], table["dx_px"] * 0.02)
    assert before.identical(frames)


def test_no_jitter_invents_none():
    frames, drift, lines, _ = _series(jitter_sd=0.0, seed=1)
    _, table = correct_series(frames)
    rigid, line, est = _errors(table, drift, lines)
    print(f"no jitter: rigid rms {rigid:.3f} px, recovered line rms {np.sqrt(np.mean(est**2)):.3f} px")
    assert rigid <= 0.1
    assert np.sqrt(np.mean(est**2)) < 0.1


def test_rigid_only_and_mean_gauge():
    frames, drift, _, _ = _series(jitter_sd=0.0, seed=2)
    _, table = correct_series(frames, linewise=False, reference="mean")
    per = table.drop_duplicates("frame")[["dy_px", "dx_px"]].to_numpy()
    assert np.allclose(per.mean(0), 0.0, atol=1e-9)
    assert np.sqrt(np.mean(np.sum((per - (drift - drift.mean(0))) ** 2, 1))) <= 0.1
    assert np.all(table["line_dx_px"] == 0.0)


def test_bad_input_is_refused():
    frames, *_ = _series(seed=3)
    with pytest.raises(InputError, match="at least 2 frames"):
        correct_series(frames.isel(frame=[0]))
    with pytest.raises(InputError, match="NaN"):
        correct_series(frames.where(frames.x > 0.1))
    with pytest.raises(InputError, match="dims"):
        correct_series(frames.isel(frame=0))
    with pytest.raises(InputError, match="too small"):
        correct_series(frames.isel(y=slice(0, 8)))
    with pytest.raises(InputError, match="reference"):
        correct_series(frames, reference="last")
