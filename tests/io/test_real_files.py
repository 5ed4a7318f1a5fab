"""Real instrument files (HyperSpy 1.7.6 and eXSpy 0.3.2 test data) read through atomine.io.

Every expected value is taken from the file's own metadata (DM calibration tags,
Velox BinaryResult/Detectors, TIA series header, EMSA header lines, TIFF
resolution tags) or from the independent writer that made the file, never from
atomine's output.
"""

import datetime as _dt
import hashlib
import re
import warnings

import dask.array as dsa
import numpy as np
import pytest

from atomine.data import UncalibratedWarning, signal_kind
from atomine.io import load, load_all

# Length units as the files write them -> nm, written out here rather than taken from atomine.
NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "m": 1e9, "1/nm": 1.0}


def step(da, dim):
    c = np.asarray(da[dim].values)
    return (c[-1] - c[0]) / (c.size - 1)


def sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def quiet_load_all(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedWarning)
        return load_all(path, **kw)


# ---------------------------------------------------------------- DigitalMicrograph


def dm_calibration(da, tag):
    """(scale, offset, units) of DM dimension TagGroup<tag>: offset = -origin * scale."""
    cal = da.attrs["original_metadata"]["ImageList"]["TagGroup0"]["ImageData"]["Calibrations"]["Dimension"][f"TagGroup{tag}"]
    return cal["Scale"], -cal["Origin"] * cal["Scale"], cal["Units"]


@pytest.mark.parametrize("name", ["test_STEM_image.dm3", "test_diffraction_pattern.dm3", "multi_signal.dm3"])
def test_dm3_calibrated_images_match_their_tags(hyperspy_io, name):
    path = hyperspy_io / "dm3_2D_data" / name
    da = quiet_load_all(path)[0]  # multi_signal.dm3's second signal is an uncalibrated line profile
    dims = ("ky", "kx") if "diffraction" in name else ("y", "x")
    assert da.dims == dims
    sizes = da.attrs["original_metadata"]["ImageList"]["TagGroup0"]["ImageData"]["Dimensions"]
    # DM lists the fast (x) dimension first.
    assert da.shape == (sizes["Data1"], sizes["Data0"])
    for dim, tag in ((dims[1], 0), (dims[0], 1)):
        scale, offset, units = dm_calibration(da, tag)
        assert da[dim].attrs["units"] == ("1/nm" if units == "1/nm" else "nm")
        assert step(da, dim) == pytest.approx(scale * NM[units], rel=1e-9)
        assert float(da[dim][0]) == pytest.approx(offset * NM[units], rel=1e-9, abs=1e-12)
    assert da.attrs["provenance"][-1]["input_hash"] == sha256(path)


def test_dm3_stem_image_metadata_from_tags(hyperspy_io):
    da = load(hyperspy_io / "dm3_2D_data" / "test_STEM_image.dm3")
    tags = da.attrs["original_metadata"]["ImageList"]["TagGroup0"]["ImageTags"]
    md = da.attrs["metadata"]
    assert md["beam_energy_kv"] == pytest.approx(tags["Microscope Info"]["Voltage"] / 1000)
    assert md["dwell_time_s"] == pytest.approx(tags["DigiScan"]["Sample Time"] * 1e-6)
    assert md["title"] == da.attrs["original_metadata"]["ImageList"]["TagGroup0"]["Name"]
    assert isinstance(da.data, np.ndarray) and da.data.flags.writeable


def test_dm3_multi_signal_file_returns_every_signal_with_unique_names(hyperspy_io):
    signals = quiet_load_all(hyperspy_io / "dm3_2D_data" / "multi_signal.dm3")
    assert len(signals) == 2
    assert len({s.name for s in signals}) == 2
    assert signal_kind(signals[0]) == "image" and signals[0].attrs["signal"] == "HAADF"
    profile = signals[1]
    assert profile.dims == ("x",) and profile.x.attrs["units"] == "px" and profile.attrs["signal"] == "profile"


@pytest.mark.parametrize("n", [1, 2, 6, 12])
def test_dm3_uncalibrated_tiny_images_get_pixel_units_and_a_warning(hyperspy_io, n):
    with pytest.warns(UncalibratedWarning):
        da = load(hyperspy_io / "dm3_2D_data" / f"test-{n}.dm3")
    assert da.dims == ("y", "x") and da.shape == (2, 2)
    assert da.y.attrs["units"] == "px" and da.x.attrs["units"] == "px"
    np.testing.assert_array_equal(da.x.values, [0.0, 1.0])


def test_dm4_eels_spectrum_image_energy_last_and_calibrated_from_tags(hyperspy_io):
    import rsciio.digitalmicrograph as dm

    path = hyperspy_io / "dm4_3D_data" / "EELS_SI.dm4"
    da = load(path, kind="spectral")
    assert da.dims == ("y", "x", "energy") and da.attrs["signal"] == "EELS"
    assert da.energy.attrs["units"] == "eV"
    e_scale, e_offset, e_units = dm_calibration(da, 2)
    assert e_units == "eV"
    assert step(da, "energy") == pytest.approx(e_scale)
    assert float(da.energy[0]) == pytest.approx(e_offset)
    x_scale, _, x_units = dm_calibration(da, 0)
    y_scale, _, _ = dm_calibration(da, 1)
    assert step(da, "x") == pytest.approx(x_scale * NM[x_units]) and da.x.attrs["units"] == "nm"
    assert step(da, "y") == pytest.approx(y_scale * NM[x_units])
    # The file stores (energy, y, x); spectra must follow their pixel after the transpose.
    raw = dm.file_reader(str(path))[0]["data"]
    assert raw.shape == (da.sizes["energy"], da.sizes["y"], da.sizes["x"])
    for i in range(da.sizes["y"]):
        for j in range(da.sizes["x"]):
            np.testing.assert_array_equal(da.values[i, j], raw[:, i, j])
    cond = da.attrs["original_metadata"]["ImageList"]["TagGroup0"]["ImageTags"]["EELS"]["Experimental Conditions"]
    md = da.attrs["metadata"]
    assert md["convergence_angle_mrad"] == pytest.approx(cond["Convergence semi-angle (mrad)"])
    assert md["collection_angle_mrad"] == pytest.approx(cond["Collection semi-angle (mrad)"])
    assert md["beam_energy_kv"] == pytest.approx(200.0)


def test_dm4_lazy_is_dask_and_equal_to_eager(hyperspy_io):
    path = hyperspy_io / "dm4_3D_data" / "EELS_SI.dm4"
    lazy = load(path, kind="spectral", lazy=True)
    eager = load(path, kind="spectral")
    assert isinstance(lazy.data, dsa.Array)
    assert lazy.dims == eager.dims
    np.testing.assert_array_equal(lazy.data.compute(), eager.values)
    np.testing.assert_array_equal(lazy.energy.values, eager.energy.values)


def test_dm3_spectra_signal_type(hyperspy_io):
    eels = load(hyperspy_io / "dm3_1D_data" / "test-EELS_spectrum.dm3", kind="any")
    eds = load(hyperspy_io / "dm3_1D_data" / "test-EDS_spectrum.dm3", kind="any")
    assert eels.dims == ("energy",) and eels.attrs["signal"] == "EELS"
    assert eds.dims == ("energy",) and eds.attrs["signal"] == "EDS"
    scale, offset, units = (lambda c: (c["Scale"], -c["Origin"] * c["Scale"], c["Units"]))(
        eds.attrs["original_metadata"]["ImageList"]["TagGroup0"]["ImageData"]["Calibrations"]["Dimension"]["TagGroup0"])
    assert units == "keV"
    assert step(eds, "energy") == pytest.approx(scale * 1000)
    assert float(eds.energy[0]) == pytest.approx(offset * 1000)


# ---------------------------------------------------------------- Velox EMD


@pytest.fixture
def sparse():
    """Velox EDS spectrum images are decoded by rosettasciio with the optional 'sparse' package."""
    return pytest.importorskip("sparse", reason="reading Velox EDS spectrum images needs the 'sparse' package "
                                                "(pip install 'rosettasciio[eds-stream]')")


def velox_detector_dispersion(om):
    """Energy step (eV) and offset (eV) the EDS detectors record in a Velox file."""
    dets = [d for d in om["Detectors"].values() if "Dispersion" in d]
    return float(dets[0]["Dispersion"]), float(dets[0]["OffsetEnergy"])


@pytest.mark.parametrize("name", ["fei_emd_si.emd", "fei_SI_SuperX-HAADF_10frames_10x50.emd"])
def test_velox_eds_spectrum_image_and_simultaneous_haadf(velox_dir, sparse, name):
    path = velox_dir / name
    signals = load_all(path)
    assert [s.name for s in signals] == ["HAADF", "EDS"]
    haadf, eds = signals
    om = haadf.attrs["original_metadata"]
    pixel_nm = float(om["BinaryResult"]["PixelSize"]["width"]) * 1e9
    assert om["BinaryResult"]["PixelUnitX"] == "m"
    assert haadf.dims == ("y", "x") and haadf.x.attrs["units"] == "nm" and haadf.attrs["signal"] == "HAADF"
    assert step(haadf, "x") == pytest.approx(pixel_nm) and step(haadf, "y") == pytest.approx(pixel_nm)
    assert float(haadf.x[0]) == pytest.approx(float(om["BinaryResult"]["Offset"]["x"]) * 1e9)
    assert float(haadf.y[0]) == pytest.approx(float(om["BinaryResult"]["Offset"]["y"]) * 1e9)
    assert eds.dims == ("y", "x", "energy") and eds.energy.attrs["units"] == "eV" and eds.attrs["signal"] == "EDS"
    assert eds.sizes["y"] == haadf.sizes["y"] and eds.sizes["x"] == haadf.sizes["x"]
    np.testing.assert_allclose(eds.x.values, haadf.x.values)
    dispersion, offset = velox_detector_dispersion(eds.attrs["original_metadata"])
    assert step(eds, "energy") == pytest.approx(dispersion)
    assert float(eds.energy[0]) == pytest.approx(offset)
    assert eds.values.sum() > 0
    md = haadf.attrs["metadata"]
    assert md["beam_energy_kv"] == pytest.approx(float(om["Optics"]["AccelerationVoltage"]) / 1000)
    start = _dt.datetime.fromtimestamp(int(om["Acquisition"]["AcquisitionStartDatetime"]["DateTime"]), _dt.timezone.utc)
    assert md["acquisition_date"] == start.strftime("%Y-%m-%dT%H:%M:%S")
    assert md["detector"] == "HAADF"
    assert md["dwell_time_s"] == pytest.approx(float(om["Scan"]["DwellTime"]))
    for s in signals:
        assert s.attrs["provenance"][-1]["input_hash"] == sha256(path)


def test_velox_default_selection_and_elements(velox_dir, sparse):
    path = velox_dir / "fei_SI_SuperX-HAADF_10frames_10x50.emd"
    assert load(path).name == "HAADF"
    eds = load(path, kind="spectral")
    assert eds.name == "EDS"
    assert eds.attrs["metadata"]["elements"] == ["Nb"]


def test_velox_lazy_is_dask_and_equal_to_eager(velox_dir, sparse):
    path = velox_dir / "fei_SI_SuperX-HAADF_10frames_10x50.emd"
    lazy = load_all(path, lazy=True)
    eager = load_all(path)
    for la, ea in zip(lazy, eager):
        assert isinstance(la.data, dsa.Array)
        assert la.dims == ea.dims and la.name == ea.name
        np.testing.assert_array_equal(la.data.compute(), ea.values)


def test_velox_four_detector_file_returns_all_signals(velox_dir, sparse):
    signals = load_all(velox_dir / "fei_SI_EDS-HAADF-4detectors_2frames.emd")
    import rsciio.emd

    raw = rsciio.emd.file_reader(str(velox_dir / "fei_SI_EDS-HAADF-4detectors_2frames.emd"))
    assert len(signals) == len(raw) == 6
    assert len({s.name for s in signals}) == 6
    kinds = [signal_kind(s) for s in signals]
    assert kinds.count("spectrum_image") == 1 and kinds.count("image") == 1 and kinds.count("spectrum") == 4


# ---------------------------------------------------------------- TIA and NCEM EMD


def test_tia_spectrum_image_matches_series_header(hyperspy_io):
    da = load(hyperspy_io / "FEI_old" / "16x16-spectrum_image-5x5x1024.emi", kind="spectral")
    head = da.attrs["original_metadata"]["ser_header_parameters"]
    assert da.dims == ("y", "x", "energy") and da.shape == (5, 5, 1024)
    assert step(da, "x") == pytest.approx(head["Dim-1_CalibrationDelta"] * 1e9)
    assert step(da, "y") == pytest.approx(head["Dim-2_CalibrationDelta"] * 1e9)
    assert step(da, "energy") == pytest.approx(head["CalibrationDelta"][0])
    assert float(da.energy[0]) == pytest.approx(head["CalibrationOffset"][0])
    assert da.attrs["metadata"]["beam_energy_kv"] == pytest.approx(300.0)
    ser = hyperspy_io / "FEI_old" / "16x16-spectrum_image-5x5x1024_1.ser"
    assert da.attrs["provenance"][-1]["parameters"]["companions"] == {ser.name: sha256(ser)}


def test_tia_image_emi_and_ser_agree_with_header(hyperspy_io):
    emi = load(hyperspy_io / "FEI_new" / "128x128-TEM_search.emi")
    ser = load(hyperspy_io / "FEI_new" / "128x128-TEM_search_1.ser")
    head = emi.attrs["original_metadata"]["ser_header_parameters"]
    assert emi.dims == ("y", "x") and emi.shape == (int(head["ArraySizeY"]), int(head["ArraySizeX"]))
    assert step(emi, "x") == pytest.approx(head["CalibrationDeltaX"] * 1e9)
    assert step(emi, "y") == pytest.approx(head["CalibrationDeltaY"] * 1e9)
    np.testing.assert_array_equal(emi.values, ser.values)
    np.testing.assert_allclose(emi.x.values, ser.x.values)


def test_tia_lazy_equals_eager(hyperspy_io):
    path = hyperspy_io / "FEI_old" / "16x16-spectrum_image-5x5x1024.emi"
    lazy, eager = load(path, kind="spectral", lazy=True), load(path, kind="spectral")
    assert isinstance(lazy.data, dsa.Array)
    np.testing.assert_array_equal(lazy.data.compute(), eager.values)


def test_ncem_emd_image_axes_from_its_dim_datasets(hyperspy_io):
    import h5py

    path = hyperspy_io / "emd_files" / "Si100_2x1x1_3D.emd"
    da = load(path)
    with h5py.File(path, "r") as f:
        group = f["4DSTEM_simulation/data/realslices/annular_detector_depth0000"]
        dims = {group[k].attrs["name"].decode(): np.asarray(group[k]) for k in ("dim1", "dim2")}
    assert da.dims == ("y", "x") and da.x.attrs["units"] == "nm"
    np.testing.assert_allclose(da.x.values, dims["R_x"], rtol=1e-6)
    np.testing.assert_allclose(da.y.values, dims["R_y"], rtol=1e-6)


def test_ncem_emd_uncalibrated_image_warns(hyperspy_io):
    with pytest.warns(UncalibratedWarning):
        da = load(hyperspy_io / "emd_files" / "example_image.emd")
    assert da.dims == ("y", "x") and da.x.attrs["units"] == "px"


# ---------------------------------------------------------------- EMSA / MSA


def msa_header(path):
    """Header keywords (units suffix kept, e.g. 'DWELLTIME-ms') and the number of channels in the data."""
    head, rows, values = {}, 0, 0
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"#([A-Z]+(?:\s*-\w+)?)\s*:\s*(.*)", line.strip())
        if m:
            head[m.group(1).replace(" ", "")] = m.group(2).strip()
        elif line.strip() and not line.startswith("#"):
            rows += 1
            values += len([v for v in re.split(r"[,\s]+", line.strip()) if v])
    # DATATYPE Y packs NCOLUMNS channels per row; XY has one (x, y) pair per row.
    return head, (rows if head.get("DATATYPE", "Y").upper() == "XY" else values)


@pytest.mark.parametrize("where,name", [("hyperspy", "msa_files/example1.msa"), ("hyperspy", "msa_files/example2.msa"),
                                        ("exspy", "coreloss_spectrum.msa"), ("exspy", "lowloss_spectrum.msa")])
def test_msa_energy_axis_matches_header(request, where, name):
    folder = request.getfixturevalue("hyperspy_io" if where == "hyperspy" else "exspy_components")
    path = folder / name
    head, rows = msa_header(path)
    da = load(path, kind="any")
    factor = {"ev": 1.0, "kev": 1000.0}[head["XUNITS"].lower()]
    assert da.dims == ("energy",) and da.energy.attrs["units"] == "eV"
    assert da.sizes["energy"] == rows  # example1.msa says NPOINTS 20 but holds 21 rows
    assert step(da, "energy") == pytest.approx(float(head["XPERCHAN"]) * factor)
    assert float(da.energy[0]) == pytest.approx(float(head["OFFSET"]) * factor)
    expected = "EELS" if head.get("SIGNALTYPE", "").upper() in ("ELS", "EELS") else "EDS"
    assert da.attrs["signal"] == expected
    md = da.attrs["metadata"]
    if "BEAMKV-kV" in head:
        assert md["beam_energy_kv"] == pytest.approx(float(head["BEAMKV-kV"]))
    if "DWELLTIME-ms" in head:
        assert md["dwell_time_s"] == pytest.approx(float(head["DWELLTIME-ms"]) * 1e-3)
    if "PROBECUR-nA" in head:
        assert md["probe_current_pa"] == pytest.approx(float(head["PROBECUR-nA"]) * 1e3)
    if "CONVANGLE-mR" in head:
        assert md["convergence_angle_mrad"] == pytest.approx(float(head["CONVANGLE-mR"]))


def test_msa_lazy_is_dask(hyperspy_io):
    path = hyperspy_io / "msa_files" / "example1.msa"
    lazy = load(path, kind="any", lazy=True)
    assert isinstance(lazy.data, dsa.Array)
    np.testing.assert_array_equal(lazy.data.compute(), load(path, kind="any").values)


# ---------------------------------------------------------------- TIFF


def test_imagej_tiff_calibration_from_resolution_tag(hyperspy_io):
    import tifffile

    path = hyperspy_io / "tiff_files" / "test_loading_image_saved_with_imageJ.tif"
    with tifffile.TiffFile(path) as tf:
        num, den = tf.pages[0].tags["XResolution"].value
        unit = tf.imagej_metadata["unit"]
    assert unit == "micron"
    da = load(path)
    assert da.dims == ("y", "x") and da.x.attrs["units"] == "nm"
    assert step(da, "x") == pytest.approx(den / num * 1000, rel=1e-6)


def test_tiff_without_scale_is_uncalibrated_with_warning(hyperspy_io):
    with pytest.warns(UncalibratedWarning):
        da = load(hyperspy_io / "tiff_files" / "test_loading_image_saved_with_imageJ_no_scale.tif")
    assert da.x.attrs["units"] == "px" and da.y.attrs["units"] == "px"
    assert da.shape == (68, 68)


def test_tiff_image_stack_is_frame_y_x(hyperspy_io):
    da = load(hyperspy_io / "tiff_files" / "test_loading_image_saved_with_imageJ_stack.tif", kind="any")
    assert da.dims == ("frame", "y", "x") and da.sizes["frame"] == 2
    assert da.x.attrs["units"] == "nm"


# ---------------------------------------------------------------- MRC, HSPY, ZSPY written by independent writers


def test_mrc_written_by_mrcfile_reads_voxel_size_in_nm(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    data = np.arange(3 * 24 * 20, dtype=np.float32).reshape(3, 24, 20)
    path = tmp_path / "stack.mrc"
    with mrcfile.new(path) as m:
        m.set_data(data)
        m.voxel_size = (1.5, 2.5, 3.0)  # (x, y, z) in Å
    da = load(path, kind="any")
    assert da.dims == ("frame", "y", "x")
    np.testing.assert_array_equal(da.values, data)
    assert step(da, "x") == pytest.approx(0.15) and step(da, "y") == pytest.approx(0.25)


def _hyperspy_si():
    hs = pytest.importorskip("hyperspy.api")
    rng = np.random.default_rng(0)
    s = hs.signals.Signal1D(rng.poisson(50, (4, 5, 64)).astype(np.float32))
    for axis, (name, scale, offset, units) in zip(s.axes_manager._axes, [("y", 0.002, 0.01, "µm"), ("x", 0.002, -0.02, "µm"),
                                                                          ("Energy loss", 0.25, 280.0, "eV")]):
        axis.name, axis.scale, axis.offset, axis.units = name, scale, offset, units
    s.metadata.General.title = "written by hyperspy"
    s.metadata.set_item("Signal.signal_type", "EELS")
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
    s.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 25.0)
    return s


@pytest.mark.parametrize("ext", [".hspy", ".zspy"])
def test_hyperspy_files_roundtrip_calibration(tmp_path, ext):
    s = _hyperspy_si()
    path = tmp_path / f"si{ext}"
    try:
        s.save(path)
    except Exception as exc:  # zspy needs zarr 2 in rosettasciio; nothing of ours to test then
        pytest.skip(f"hyperspy cannot write {ext} here: {type(exc).__name__}: {exc}")
    da = load(path, kind="spectral")
    assert da.dims == ("y", "x", "energy") and da.attrs["signal"] == "EELS"
    np.testing.assert_array_equal(da.values, s.data)
    assert step(da, "x") == pytest.approx(2.0) and float(da.x[0]) == pytest.approx(-20.0)
    assert step(da, "y") == pytest.approx(2.0) and float(da.y[0]) == pytest.approx(10.0)
    assert step(da, "energy") == pytest.approx(0.25) and float(da.energy[0]) == pytest.approx(280.0)
    md = da.attrs["metadata"]
    assert md["title"] == "written by hyperspy"
    assert md["beam_energy_kv"] == 300.0 and md["convergence_angle_mrad"] == 25.0
