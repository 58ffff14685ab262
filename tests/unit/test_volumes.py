"""3-D volumes: NIfTI and DICOM in, geometry kept, slices as frames, intensity windows, bad series."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from samstream.io.volumes import (  # noqa: E402
    WINDOW_PRESETS,
    IntensityWindow,
    VolumeError,
    is_volume_path,
    load_dicom_series,
    load_volume,
    save_label_nifti,
)
from samstream.video.sources import VolumeFrameSource  # noqa: E402
from samstream.video.sources.volume import slice_plane  # noqa: E402

from highres_data import SHAPE, SPACING, affine, ellipsoid, write_dicom_series, write_nifti  # noqa: E402


def test_nifti_geometry_round_trip(tmp_path):
    data = write_nifti(tmp_path / "ct.nii.gz")
    assert is_volume_path(tmp_path / "ct.nii.gz") and not is_volume_path(tmp_path)
    volume = load_volume(tmp_path / "ct.nii.gz")
    np.testing.assert_array_equal(volume.data, data.astype(np.float32))
    np.testing.assert_allclose(volume.affine, affine(), atol=1e-5)
    np.testing.assert_allclose(volume.spacing, SPACING, atol=1e-5)
    assert volume.voxel_ml == pytest.approx(0.8 * 0.7 * 2.5 / 1000, rel=1e-5)
    labels = ellipsoid().astype(np.uint16) * 3
    save_label_nifti(tmp_path / "labels.nii.gz", labels, volume)
    back = nib.load(str(tmp_path / "labels.nii.gz"))
    np.testing.assert_allclose(back.affine, affine(), atol=1e-5)
    np.testing.assert_allclose(back.header.get_zooms(), SPACING, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.dataobj), labels)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_as_frames(tmp_path, axis):
    write_nifti(tmp_path / "ct.nii")
    volume = load_volume(tmp_path / "ct.nii")
    source = VolumeFrameSource(volume, 64, axis=axis, window=IntensityWindow(150, 300))
    others = [n for a, n in enumerate(SHAPE) if a != axis]
    assert source.num_frames == SHAPE[axis]
    assert (source.video_height, source.video_width) == (others[1], others[0])
    k = SHAPE[axis] // 2
    frame = source.get_rgb(k)
    plane = np.take(volume.data, k, axis=axis).T  # rows: the later axis, columns: the earlier one
    np.testing.assert_array_equal(frame[:, :, 0], IntensityWindow(150, 300).apply(plane))
    assert source.get(k).shape == (3, 64, 64)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    slice_plane(labels, axis, k)[...] = 1
    assert labels.sum() == others[0] * others[1] and np.take(labels, k, axis=axis).all()


def test_windows_and_presets():
    w = IntensityWindow(40, 400)
    np.testing.assert_array_equal(w.apply(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])), [0, 0, 128, 255, 255])
    assert WINDOW_PRESETS["lung"] == IntensityWindow(-600, 1500)
    with pytest.raises(ValueError, match="WIDTH > 0"):
        IntensityWindow(0, 0)


# ---------------------------------------------------------------------------- DICOM
def test_dicom_series_geometry(tmp_path):
    pixels = write_dicom_series(tmp_path / "ct")
    # written in shuffled order on disk is irrelevant: slices are ordered by position
    volume = load_dicom_series(tmp_path / "ct")
    assert volume.data.shape == (24, 20, 6)  # columns, rows, slices
    np.testing.assert_array_equal(volume.data[:, :, 3], pixels[3].T)
    np.testing.assert_allclose(volume.spacing, (0.9, 0.6, 2.5))
    # voxel (0, 0, k) is the first pixel of slice k; DICOM LPS becomes RAS (x and y flipped)
    np.testing.assert_allclose(volume.affine @ [0, 0, 2, 1], [10.0, -20.0, -45.0, 1.0])
    np.testing.assert_allclose(volume.affine @ [1, 0, 0, 1], [10.0 - 0.9, -20.0, -50.0, 1.0])


def test_dicom_missing_slices_and_mixed_series_name_the_files(tmp_path):
    write_dicom_series(tmp_path / "gap", skip=(3,))
    with pytest.raises(VolumeError, match=r"missing slices .*slice002\.dcm and slice004\.dcm"):
        load_dicom_series(tmp_path / "gap")
    write_dicom_series(tmp_path / "mixed", count=3, prefix="a")
    write_dicom_series(tmp_path / "mixed", count=3, prefix="b", z0=0.0)
    with pytest.raises(VolumeError, match=r"mixes 2 DICOM series .*a000\.dcm.*b000\.dcm"):
        load_dicom_series(tmp_path / "mixed")
