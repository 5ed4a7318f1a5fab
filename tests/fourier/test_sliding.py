"""sliding_fft against exact Fourier physics: peak positions, coordinates, taper, masks, edges."""

import warnings

import numpy as np
import pytest
import scipy.signal

from atomine.data import image
from atomine.fourier import sliding_fft, window_centres_px

PX = 0.05  # nm per pixel


def _cosine(ny, nx, ky_px=0.0, kx_px=0.0, pixel_size=PX, **kw):
    """cos(2 pi (ky y + kx x)) with frequencies in cycles per pixel."""
    y, x = np.mgrid[0:ny, 0:nx]
    return image(10 + np.cos(2 * np.pi * (ky_px * y + kx_px * x)), pixel_size=pixel_size, **kw)


def _peak(spec2d):
    """(ky, kx) coordinates of the strongest bin of one window's spectrum."""
    i, j = np.unravel_index(int(np.argmax(spec2d.values)), spec2d.shape)
    return float(spec2d.ky[i]), float(spec2d.kx[j])


def test_cosine_peak_at_inverse_period_in_cycles_per_nm():
    period_px = 8  # 0.4 nm -> k = 2.5 cycles/nm, exactly bin 4 of a 32 px window
    out = sliding_fft(_cosine(96, 96, kx_px=1 / period_px), 32, 8)
    assert out.ky.attrs["units"] == "1/nm" and out.kx.attrs["units"] == "1/nm"
    flat = out.values.reshape(-1, out.sizes["ky"], out.sizes["kx"])
    idx = np.array([np.unravel_index(np.argmax(f), f.shape) for f in flat])
    assert np.all(out.ky.values[idx[:, 0]] == 0.0)
    assert np.allclose(out.kx.values[idx[:, 1]], 1 / (period_px * PX))


def test_rotated_lattice_gives_its_angle():
    k, theta = 1 / 7.3, np.deg2rad(33.0)  # cycles/px, off-grid on purpose
    img = _cosine(128, 128, ky_px=k * np.sin(theta), kx_px=k * np.cos(theta))
    out = sliding_fft(img, 64, 32, taper="blackman")
    ky, kx = _peak(out.isel(wy=1, wx=1))
    # Bin-accurate: the angle and |k| are within one bin (1/64 cycles/px) of the truth.
    assert abs(np.hypot(ky, kx) - k / PX) <= 1 / (64 * PX)
    assert abs(np.degrees(np.arctan2(ky, kx)) - 33.0) < np.degrees(np.arctan(1 / (64 * k)))


@pytest.mark.parametrize("shape", [(64, 160), (160, 64)])
def test_non_square_images_keep_orientation(shape):
    ny, nx = shape
    along_x = sliding_fft(_cosine(ny, nx, kx_px=1 / 8), 32, 16)  # intensity varies along x
    along_y = sliding_fft(_cosine(ny, nx, ky_px=1 / 8), 32, 16)
    assert along_x.sizes["wy"] == (ny - 32) // 16 + 1 and along_x.sizes["wx"] == (nx - 32) // 16 + 1
    assert _peak(along_x.isel(wy=0, wx=-1)) == (0.0, 2.5)
    ky, kx = _peak(along_y.isel(wy=-1, wx=0))
    assert kx == 0.0 and abs(ky) == 2.5


def test_window_centre_coordinates_exact():
    img = _cosine(70, 90, kx_px=0.1, pixel_size=(0.1, 0.2), origin=(1.0, -3.0))
    out = sliding_fft(img, 16, 5)
    iy = np.arange((70 - 16) // 5 + 1) * 5
    ix = np.arange((90 - 16) // 5 + 1) * 5
    np.testing.assert_allclose(out.wy.values, 1.0 + 0.1 * (iy + 7.5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.wx.values, -3.0 + 0.2 * (ix + 7.5), rtol=0, atol=1e-12)
    assert out.wy.attrs["units"] == "nm"
    # k spacing follows each axis' own pixel size: 1 / (window * pixel size).
    assert np.isclose(np.diff(out.ky.values)[0], 1 / (16 * 0.1))
    assert np.isclose(np.diff(out.kx.values)[0], 1 / (16 * 0.2))


@pytest.mark.parametrize("window", [16, 15])
@pytest.mark.parametrize("taper", ["hann", "tukey", None])
def test_values_equal_reference_transform(window, taper):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 50))
    cplx = sliding_fft(image(data, pixel_size=PX), window, 7, taper=taper, output="complex")
    mag = sliding_fft(image(data, pixel_size=PX), window, 7, taper=taper)
    name = "boxcar" if taper is None else ("tukey", 0.5) if taper == "tukey" else taper
    t1 = scipy.signal.get_window(name, window, fftbins=True)
    i0, j0 = 2 * 7, 3 * 7
    win = data[i0:i0 + window, j0:j0 + window]
    ref = np.fft.fftshift(np.fft.fft2((win - win.mean()) * np.outer(t1, t1)))
    np.testing.assert_allclose(cplx.values[2, 3], ref, atol=2e-4 * np.abs(ref).max())
    # rfft half-plane: kx = 0 .. floor(w/2); for even w the Nyquist column is the shifted plane's first.
    half = np.concatenate([ref[:, window // 2:], ref[:, :1]], axis=1) if window % 2 == 0 else ref[:, window // 2:]
    np.testing.assert_allclose(mag.values[2, 3], np.abs(half), atol=2e-4 * np.abs(ref).max())
    assert np.allclose(cplx.kx.values, np.fft.fftshift(np.fft.fftfreq(window, PX)))
    assert np.allclose(mag.kx.values, np.fft.rfftfreq(window, PX))
    assert cplx.dtype == np.complex64 and mag.dtype == np.float32


def test_power_and_log_outputs():
    img = _cosine(64, 64, kx_px=1 / 8)
    mag = sliding_fft(img, 32, 16).values
    np.testing.assert_allclose(sliding_fft(img, 32, 16, output="power").values, mag ** 2, rtol=1e-5)
    np.testing.assert_allclose(sliding_fft(img, 32, 16, output="log").values, np.log1p(mag), rtol=1e-6)


def test_taper_applied_before_fft_reduces_leakage():
    # 32 px window holding 32 / 7.3 periods: the edges do not match, so an untapered FFT
    # leaks into distant bins; a Hann taper before the FFT suppresses that.
    img = _cosine(32, 32, kx_px=1 / 7.3)
    far = {}
    for taper in ("hann", None):
        spec = sliding_fft(img, 32, 1, taper=taper).values[0, 0]
        far[taper] = spec[:, 10:].sum() / spec.sum()  # kx >= 10 bins, peak is at ~4.4 bins
    assert far["hann"] < 0.1 * far[None]


def test_mask_dc_zeroes_main_lobe_only():
    img = _cosine(64, 64, kx_px=1 / 8)
    img = img + np.linspace(0, 5, 64)[None, :]  # a ramp leaks power next to k = 0 after the taper
    plain = sliding_fft(img, 32, 16)
    masked = sliding_fft(img, 32, 16, mask_dc=True)
    dk = 1 / (32 * PX)
    r = np.hypot(masked.ky.values[:, None] / dk, masked.kx.values[None, :] / dk)
    assert plain.sel(ky=0, kx=0).max() > 0
    assert np.all(masked.values[..., r < 2] == 0)
    np.testing.assert_array_equal(masked.values[..., r >= 2], plain.values[..., r >= 2])
    radius = sliding_fft(img, 32, 16, mask_dc=1.0)  # cycles/nm
    assert np.all(radius.values[..., np.hypot(radius.ky.values[:, None], radius.kx.values) < 1.0] == 0)


def test_k_max_band_limit_crops_and_keeps_peak():
    img = _cosine(64, 64, kx_px=1 / 8)  # peak at 2.5 /nm
    full = sliding_fft(img, 32, 16)
    band = sliding_fft(img, 32, 16, k_max=4.0)
    assert np.abs(band.ky).max() <= 4.0 and np.abs(band.kx).max() <= 4.0
    assert band.sizes["kx"] < full.sizes["kx"] and band.sizes["ky"] < full.sizes["ky"]
    k = np.hypot(band.ky.values[:, None], band.kx.values[None, :])
    assert np.all(band.values[..., k > 4.0] == 0)
    inside = full.sel(ky=band.ky, kx=band.kx).values
    np.testing.assert_allclose(band.values[..., k <= 4.0], inside[..., k <= 4.0], rtol=1e-5, atol=1e-6 * inside.max())
    assert _peak(band.isel(wy=0, wx=0)) == (0.0, 2.5)


def test_pad_edges_centres_cover_image_and_match_reflect_padding():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(50, 70))
    out = sliding_fft(image(data, pixel_size=PX), 16, 4, edges="pad")
    cy = window_centres_px(50, 16, 4, "pad")
    assert cy[0] <= 0 and cy[-1] >= 50 - 1 - 4  # every pixel within a step of a centre
    np.testing.assert_allclose(out.wy.values, PX * cy)
    assert out.sizes["wy"] == (50 + 16 - 16) // 4 + 1 and out.sizes["wx"] == (70 + 16 - 16) // 4 + 1
    padded = np.pad(data, 8, mode="reflect")
    ref = sliding_fft(image(padded, pixel_size=PX), 16, 4)
    np.testing.assert_allclose(out.values, ref.values, rtol=1e-5, atol=1e-5)


def test_plain_array_gives_pixel_units_and_default_step():
    y, x = np.mgrid[0:64, 0:64]
    out = sliding_fft(np.cos(2 * np.pi * x / 8), 32)
    assert out.attrs["step"] == 8 and out.kx.attrs["units"] == "1/px" and out.wx.attrs["units"] == "px"
    assert _peak(out.isel(wy=0, wx=0)) == (0.0, 0.125)
    np.testing.assert_allclose(out.wx.values, np.arange(5) * 8 + 15.5)


def test_attrs_provenance_and_input_untouched():
    img = _cosine(64, 64, kx_px=1 / 8)
    before = img.copy(deep=True)
    out = sliding_fft(img, 32, 16, taper="gaussian", output="log")
    assert img.identical(before)
    assert out.attrs["window"] == 32 and out.attrs["step"] == 16 and out.attrs["taper"] == "gaussian"
    assert out.attrs["output"] == "log" and out.attrs["pixel_size"] == [PX, PX]
    last = out.attrs["provenance"][-1]
    assert last["name"] == "sliding_fft" and last["input_hash"].startswith("sha256:")


def test_progress_reports_every_batch_to_completion():
    calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sliding_fft(np.random.default_rng(0).normal(size=(64, 64)), 16, 4, chunk_windows=30,
                    progress=lambda done, total, msg: calls.append((done, total)))
    done = [c[0] for c in calls]
    assert len(calls) > 1 and done == sorted(done) and calls[-1] == (169, 169)


def test_batching_does_not_change_results():
    data = np.random.default_rng(2).normal(size=(60, 60))
    a = sliding_fft(data, 16, 3)
    b = sliding_fft(data, 16, 3, chunk_windows=7)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("taper", ["hann", "blackman", "tukey", "gaussian"])
def test_large_mean_keeps_float32_precision(taper):
    # HAADF-like: a mean of 1e4 counts against a contrast of 1. Mean removal (in frequency
    # space for sparse tapers, in real space otherwise) must not drown the lattice in rounding.
    y, x = np.mgrid[0:64, 0:64]
    data = 1e4 + np.cos(2 * np.pi * x / 8) + 0.5 * np.cos(2 * np.pi * (x + y) / 5.3)
    out = sliding_fft(image(data, pixel_size=PX), 32, 16, taper=taper).values[1, 1]
    name = ("tukey", 0.5) if taper == "tukey" else ("gaussian", 32 / 6) if taper == "gaussian" else taper
    t1 = scipy.signal.get_window(name, 32, fftbins=True)
    win = data[16:48, 16:48]
    ref = np.abs(np.fft.fftshift(np.fft.rfft2((win - win.mean()) * np.outer(t1, t1)), axes=0))
    np.testing.assert_allclose(out, ref, atol=1e-4 * ref.max())


def test_integer_and_float32_inputs_match_float64():
    data = np.random.default_rng(5).integers(0, 60000, size=(48, 48))
    ref = sliding_fft(data.astype(np.float64), 16, 8).values
    for dtype in (np.uint16, np.int64, np.float32):
        np.testing.assert_allclose(sliding_fft(data.astype(dtype), 16, 8).values, ref, rtol=1e-4,
                                   atol=1e-5 * ref.max())


@pytest.mark.parametrize("window", [16, 15])
@pytest.mark.parametrize("output", ["complex", "magnitude"])
def test_k_max_crop_equals_cropped_full_plane(window, output):
    data = np.random.default_rng(4).normal(size=(40, 40))
    full = sliding_fft(data, window, 6, output=output)  # px units: k in cycles/px
    band = sliding_fft(data, window, 6, output=output, k_max=0.3)
    inside = full.sel(ky=band.ky, kx=band.kx).values
    keep = np.hypot(band.ky.values[:, None], band.kx.values[None, :]) <= 0.3
    np.testing.assert_allclose(band.values[..., keep], inside[..., keep], rtol=1e-5, atol=1e-6 * np.abs(inside).max())
    assert np.all(band.values[..., ~keep] == 0)
