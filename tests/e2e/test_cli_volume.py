"""``samstream track VOLUME.nii.gz`` end to end: slices as frames, both ways, label volume in the input geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

nib = pytest.importorskip("nibabel")

from samstream.cli import main  # noqa: E402

from highres_data import SHAPE, SPACING, affine, ellipsoid, write_dicom_series, write_nifti  # noqa: E402


def test_track_volume_writes_labels_in_input_geometry(tmp_path, tiny_model_files, capsys):
    write_nifti(tmp_path / "ct.nii.gz")
    k = 6
    cross = ellipsoid()[:, :, k].T  # the slice as a frame: rows j, columns i
    Image.fromarray(cross.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    code = main(
        [
            "track", str(tmp_path / "ct.nii.gz"), "--mask", f"{k}:{tmp_path / 'mask.png'}:2",
            "--preset", "soft-tissue", "--output-dir", str(out), *tiny_model_files.cli_args(),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    labels_image = nib.load(str(out / "labels.nii.gz"))
    np.testing.assert_allclose(labels_image.affine, affine(), atol=1e-5)
    np.testing.assert_allclose(labels_image.header.get_zooms(), SPACING, atol=1e-5)
    labels = np.asarray(labels_image.dataobj)
    assert labels.shape == SHAPE and set(np.unique(labels)) <= {0, 2}
    # the prompted slice holds the prompt's mask, at the same voxels (orientation kept)
    prompted = labels[:, :, k] == 2
    truth = ellipsoid()[:, :, k]
    assert (prompted & truth).sum() / (prompted | truth).sum() > 0.9
    # both ways: every slice, before and after the prompt, has a mask file
    assert sorted(p.name for p in (out / "002").glob("*.png")) == [f"{s:05d}.png" for s in range(SHAPE[2])]
    summary = json.loads((out / "volume.json").read_text())
    voxels = int((labels == 2).sum())
    assert summary["objects"]["2"]["voxels"] == voxels
    assert summary["objects"]["2"]["ml"] == pytest.approx(voxels * 0.8 * 0.7 * 2.5 / 1000, rel=1e-5)
    assert summary["spacing_mm"] == pytest.approx(list(SPACING), abs=1e-5)
    assert summary["window"] == {"center": 40.0, "width": 400.0}
    assert "mL" in printed


def test_track_volume_other_axis_and_errors(tmp_path, tiny_model_files, capsys):
    write_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "sag"
    args = ["track", str(tmp_path / "ct.nii.gz"), "--axis", "0", "--window", "150,300", "--point", "20:18,6"]
    assert main([*args, "--output-dir", str(out), "--format", "rle", *tiny_model_files.cli_args()]) == 0
    lines = (out / "masks.rle.jsonl").read_text().splitlines()
    assert len(lines) == SHAPE[0]
    assert nib.load(str(out / "labels.nii.gz")).shape == SHAPE
    base = ["track", str(tmp_path / "ct.nii.gz"), "--point", "0:5,5", *tiny_model_files.cli_args()]
    assert main([*base, "--stream", "--output-dir", str(tmp_path / "a")]) == 2
    assert "--stream is not available for 3-D volumes" in capsys.readouterr().err
    assert main([*base, "--window", "40,0", "--output-dir", str(tmp_path / "b")]) == 2
    assert "--window" in capsys.readouterr().err
    assert main([*base, "--point", "99:5,5", "--output-dir", str(tmp_path / "c")]) == 2
    assert "12 frames" in capsys.readouterr().err


def test_track_dicom_series_folder(tmp_path, tiny_model_files, capsys):
    pytest.importorskip("pydicom")
    write_dicom_series(tmp_path / "ct", count=5)
    out = tmp_path / "out"
    args = ["track", str(tmp_path / "ct"), "--point", "2:10,8", "--preset", "bone", "--format", "palette"]
    assert main([*args, "--output-dir", str(out), *tiny_model_files.cli_args()]) == 0
    labels = nib.load(str(out / "labels.nii.gz"))
    assert labels.shape == (24, 20, 5)
    np.testing.assert_allclose(labels.header.get_zooms(), (0.9, 0.6, 2.5))
    assert sorted(p.name for p in out.glob("*.png")) == [f"{s:05d}.png" for s in range(5)]
    write_dicom_series(tmp_path / "gap", count=5, skip=(2,))
    assert main(["track", str(tmp_path / "gap"), "--point", "0:5,5", "--output-dir", str(tmp_path / "o"), *tiny_model_files.cli_args()]) == 2
    assert "slice001.dcm and slice003.dcm" in capsys.readouterr().err
