"""Figures: calibrated axes, colour bars with value units, scale bars, and curves equal to the data."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage

from atomine.data import UncalibratedWarning, cits_grid, image, spectrum_image
from atomine.errors import InputError
from atomine.report import (
    plot_atoms_overlay,
    plot_cits,
    plot_image,
    plot_image_grid,
    plot_maps,
    plot_profiles,
    plot_spectrum_image,
)
from atomine.report.spectral import spectral_centroid
from atomine.report._draw import nice_length


def _image_axes(fig):
    """The panels that show an image (colour-bar axes hold no AxesImage)."""
    return [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_children())]


def _colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax not in _image_axes(fig) and not ax.lines and ax.get_ylabel()]


def test_plot_image_places_pixel_centres_on_their_coordinates():
    data = np.zeros((50, 80), dtype=np.float32)
    data[10, 20] = 1.0
    da = image(data, 0.05, origin=(1.0, 2.0), value_units="counts")
    fig = plot_image(da)
    (ax,) = _image_axes(fig)
    assert ax.get_xlabel() == "x (nm)" and ax.get_ylabel() == "y (nm)"
    (im,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    x0, x1, y_bottom, y_top = im.get_extent()
    # Pixel edges sit half a pixel outside the first/last centres; y grows downward.
    assert (x0, x1) == pytest.approx((2.0 - 0.025, 2.0 + 79 * 0.05 + 0.025))
    assert (y_top, y_bottom) == pytest.approx((1.0 - 0.025, 1.0 + 49 * 0.05 + 0.025))
    # The bright pixel's physical centre falls inside the displayed cell (10, 20).
    xc, yc = 2.0 + 20 * 0.05, 1.0 + 10 * 0.05
    col = int((xc - x0) / (x1 - x0) * 80)
    row = int((yc - y_top) / (y_bottom - y_top) * 50)
    assert im.get_array()[row, col] == 1.0
    assert "HAADF (counts)" in _colorbar_labels(fig)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert "0.5 nm" in texts  # 4 nm field of view -> a 0.5 nm bar (1-2-5 series, about a fifth of it)


def test_nice_length_is_a_round_fifth_of_the_span():
    assert nice_length(4.0) == 0.5
    assert nice_length(10.0) == 2.0
    assert nice_length(26.0) == 5.0
    assert nice_length(0.3) == pytest.approx(0.05)


def test_large_image_is_strided_for_display_but_keeps_its_physical_extent():
    rng = np.random.default_rng(1)
    da = image(rng.random((3000, 12)).astype(np.float32), 0.01)
    fig = plot_image(da)
    (im,) = [a for a in _image_axes(fig)[0].get_children() if isinstance(a, AxesImage)]
    assert im.get_array().shape == (1000, 4)
    x0, x1, yb, yt = im.get_extent()
    assert yb - yt == pytest.approx(3000 * 0.01)


def test_uncalibrated_image_is_labelled_in_pixels():
    with pytest.warns(UncalibratedWarning):
        da = image(np.arange(64, dtype=np.float32).reshape(8, 8))
    ax = _image_axes(plot_image(da))[0]
    assert ax.get_xlabel() == "x (px)" and ax.get_ylabel() == "y (px)"


def test_plot_image_rejects_bad_input():
    with pytest.raises(InputError, match="dims"):
        plot_image(spectrum_image(np.ones((4, 4, 5)), 0.1, energy_scale=1.0))
    with pytest.raises(InputError, match="DataArray"):
        plot_image(np.ones((4, 4)))
    nan = xr.DataArray(np.full((4, 4), np.nan), dims=("y", "x"), name="bad")
    with pytest.raises(InputError, match="finite"):
        plot_image(nan)


def _two_peak_si():
    e = np.linspace(400.0, 500.0, 201)
    peak_a = np.exp(-0.5 * ((e - 430.0) / 4.0) ** 2)
    peak_b = np.exp(-0.5 * ((e - 470.0) / 6.0) ** 2)
    yy, xx = np.mgrid[0:12, 0:16]
    frac = xx / 15.0  # component b grows left to right
    data = (1 - frac)[..., None] * peak_a + 2.0 * frac[..., None] * peak_b
    return spectrum_image(data.astype(np.float32), 0.2, energy=e), data, e


def test_spectrum_image_figure_shows_the_summed_and_pixel_spectra_of_the_data():
    da, data, e = _two_peak_si()
    fig = plot_spectrum_image(da, pixels=[(3, 0), (3, 15)])
    line_axes = [ax for ax in fig.axes if ax.lines]
    summed_ax, pixel_ax = line_axes
    assert summed_ax.get_xlabel() == "energy loss (eV)"
    x, y = summed_ax.lines[0].get_data()
    np.testing.assert_allclose(x, e)
    np.testing.assert_allclose(y, data.sum(axis=(0, 1)), rtol=1e-5)
    left, right = (ln.get_ydata() for ln in pixel_ax.lines)
    np.testing.assert_allclose(left, data[3, 0], rtol=1e-6, atol=1e-7)  # float32 data
    np.testing.assert_allclose(right, data[3, 15], rtol=1e-6, atol=1e-7)
    # Pure component a at the left edge peaks at 430 eV, pure b at the right edge at 470 eV.
    assert e[np.argmax(left)] == pytest.approx(430.0) and e[np.argmax(right)] == pytest.approx(470.0)
    assert "summed EELS (counts)" in _colorbar_labels(fig)
    assert _image_axes(fig)[0].get_xlabel() == "x (nm)"


def test_spectral_centroid_follows_the_mixture():
    da, _, _ = _two_peak_si()
    c = spectral_centroid(da)
    assert c.attrs["units"] == "eV"
    # Pure component a (430 eV peak) at the left edge, pure b (470 eV) at the right edge.
    np.testing.assert_allclose(c.isel(x=0).values, 430.0, atol=0.01)
    np.testing.assert_allclose(c.isel(x=-1).values, 470.0, atol=0.01)
    assert np.all(np.diff(c.isel(y=0).values) > 0)


def test_spectrum_image_default_pixels_are_the_most_different_spectra():
    da, data, e = _two_peak_si()
    fig = plot_spectrum_image(da)
    pixel_ax = [ax for ax in fig.axes if ax.lines][1]
    first, second = (ln.get_ydata() for ln in pixel_ax.lines[:2])
    assert e[np.argmax(first)] == pytest.approx(470.0)   # highest centroid: pure b
    assert e[np.argmax(second)] == pytest.approx(430.0)  # lowest centroid: pure a
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert titles == ["signal summed over energy", "spectral centroid"]
    assert "spectral centroid (eV)" in _colorbar_labels(fig)


def test_spectrum_image_rejects_bad_input():
    da, _, _ = _two_peak_si()
    with pytest.raises(InputError, match="outside"):
        plot_spectrum_image(da, pixels=[(12, 0)])
    with pytest.raises(InputError, match="dims"):
        plot_spectrum_image(da.isel(energy=0))


def _cits(c_map, v):
    g0 = 2e-10
    current = g0 * v[None, None, :] + c_map[..., None] * v[None, None, :] ** 3
    return cits_grid(current, 0.5, bias=v, value_units="A"), g0


def test_cits_map_is_the_analytic_conductance_at_the_chosen_bias():
    rng = np.random.default_rng(3)
    c_map = 1e-10 * (1.0 + rng.random((10, 12)))
    v = np.linspace(-1.0, 1.0, 101)
    da, g0 = _cits(c_map, v)
    fig = plot_cits(da, bias=0.8)
    ax_map = _image_axes(fig)[0]
    (im,) = [a for a in ax_map.get_children() if isinstance(a, AxesImage)]
    expected = g0 + 3.0 * c_map * 0.8**2  # dI/dV of g0 V + c V^3
    np.testing.assert_allclose(im.get_array(), expected, rtol=1e-3)
    assert "dI/dV (A/V)" in _colorbar_labels(fig)
    assert ax_map.get_title() == "dI/dV at 0.8 V"
    mean_ax = [ax for ax in fig.axes if ax.lines][0]
    assert mean_ax.get_xlabel() == "sample bias (V)"
    np.testing.assert_allclose(mean_ax.lines[0].get_ydata(), da.values.mean(axis=(0, 1)), rtol=1e-9)


def test_cits_default_bias_is_where_the_conductance_varies_most():
    rng = np.random.default_rng(4)
    c_map = 1e-10 * (1.0 + rng.random((8, 8)))
    v = np.linspace(-0.5, 1.0, 76)
    da, _ = _cits(c_map, v)
    fig = plot_cits(da)
    # The spread of 3 c V^2 across the grid grows with |V|: largest at the +1 V end.
    assert _image_axes(fig)[0].get_title() == "dI/dV at 1 V"


def test_cits_rejects_bad_input():
    v = np.linspace(-1, 1, 11)
    da, _ = _cits(np.ones((4, 4)) * 1e-10, v)
    with pytest.raises(InputError, match="outside the measured range"):
        plot_cits(da, bias=2.0)
    with pytest.raises(InputError, match="two bias points"):
        plot_cits(da.isel(bias=[3]))
    with pytest.raises(InputError, match="dims"):
        plot_cits(da.rename(bias="energy"))


def _lattice_table(n=6, a=0.4):
    j, i = np.meshgrid(np.arange(n), np.arange(n))
    sub = ((i + j) % 2).ravel()
    cls = np.where(np.arange(n * n) == 7, "dopant", "host")
    return pd.DataFrame({"x": 0.2 + a * j.ravel(), "y": 0.2 + a * i.ravel(), "sublattice": sub, "cls": cls,
                         "x_px": (0.2 + a * j.ravel()) / 0.02, "y_px": (0.2 + a * i.ravel()) / 0.02})


def _scatter_offsets(fig):
    ax = _image_axes(fig)[0]  # legend handles are PathCollections too, but not in ax.collections
    pts = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    return np.concatenate(pts)


def test_atoms_overlay_draws_every_atom_at_its_position():
    table = _lattice_table()
    da = image(np.random.default_rng(0).random((120, 120)).astype(np.float32), 0.02)
    fig = plot_atoms_overlay(da, table)
    pts = _scatter_offsets(fig)
    assert len(pts) == len(table)
    got = sorted(map(tuple, np.round(pts, 9)))
    want = sorted(map(tuple, np.round(table[["x", "y"]].to_numpy(), 9)))
    assert got == want
    ax = _image_axes(fig)[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "sublattice 0" in labels and "sublattice 1" in labels and any("dopant" in s for s in labels)
    assert ax.get_xlim() == pytest.approx((-0.01, 2.39))  # the image, not the atoms, sets the view


def test_atoms_overlay_on_uncalibrated_image_uses_pixel_columns():
    table = _lattice_table()
    with pytest.warns(UncalibratedWarning):
        da = image(np.ones((120, 120), dtype=np.float32))
    pts = _scatter_offsets(plot_atoms_overlay(da, table))
    assert sorted(pts[:, 0]) == pytest.approx(sorted(table["x_px"]))


def test_atoms_overlay_rejects_bad_input():
    da = image(np.ones((20, 20), dtype=np.float32), 0.1)
    with pytest.raises(InputError, match="x and y"):
        plot_atoms_overlay(da, pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InputError, match="no column"):
        plot_atoms_overlay(da, _lattice_table(), by="species")
    with pytest.raises(InputError, match="DataFrame"):
        plot_atoms_overlay(da, np.zeros((3, 2)))


def test_image_grid_has_one_calibrated_panel_per_component():
    rng = np.random.default_rng(2)
    stack = xr.DataArray(rng.random((3, 10, 14)), dims=("component", "y", "x"),
                         coords={"component": [0, 1, 2], "y": np.arange(10) * 0.1, "x": np.arange(14) * 0.1},
                         name="abundance", attrs={"units": ""})
    stack.coords["x"].attrs["units"] = "nm"
    stack.coords["y"].attrs["units"] = "nm"
    fig = plot_image_grid(stack.transpose("y", "x", "component"), "component")
    panels = _image_axes(fig)
    assert [ax.get_title() for ax in panels] == ["component = 0", "component = 1", "component = 2"]
    assert all(ax.get_xlabel() == "x (nm)" for ax in panels)
    assert _colorbar_labels(fig) == ["abundance"] * 3
    with pytest.raises(InputError, match="dims"):
        plot_image_grid(stack.isel(component=0), "component")


def test_plot_maps_draws_each_map_with_its_units():
    base = image(np.ones((10, 12), dtype=np.float32), 0.1)
    strain = base.copy(data=np.linspace(-0.01, 0.01, 120).reshape(10, 12)).rename("exx")
    strain.attrs["units"] = ""
    shift = base.copy(data=np.full((10, 12), 15.0)).rename("dy")
    shift.attrs["units"] = "pm"
    fig = plot_maps([strain, shift], title="truth")
    panels = _image_axes(fig)
    assert [ax.get_title() for ax in panels] == ["exx", "dy"]
    assert "dy (pm)" in _colorbar_labels(fig)
    (im,) = [a for a in panels[0].get_children() if isinstance(a, AxesImage)]
    assert im.get_clim() == pytest.approx((-0.01, 0.01))  # maps use their full range, not percentiles
    with pytest.raises(InputError, match="at least one"):
        plot_maps([])
    with pytest.raises(InputError, match="dims"):
        plot_maps([strain.isel(y=0)])


def test_plot_profiles_draws_curves_against_their_coordinate():
    y = xr.Variable("y", np.arange(20) * 0.02, {"units": "nm"})
    shift = xr.DataArray(np.sin(np.arange(20.0)), dims="y", coords={"y": y}, name="shift_x_px", attrs={"units": "px"})
    fig = plot_profiles([shift])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "y (nm)"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), y.values)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), shift.values)
    assert ax.get_legend().get_texts()[0].get_text() == "shift_x_px (px)"
    with pytest.raises(InputError, match="1-D"):
        plot_profiles([shift.expand_dims("x")])
