"""Synthetic data for the high-resolution tests: discs, a stand-in mask generator, an ellipsoid volume."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from samstream.image.automatic import MaskProposals
from samstream.io.rle import encode_coco_rle


def disk(height, width, cx, cy, r):
    yy, xx = np.mgrid[:height, :width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


class ComponentsGenerator:
    """A stand-in for the automatic generator: every bright connected region of a tile is a mask."""

    def generate_proposals(self, image):
        labels, count = ndimage.label(image[:, :, 0] > 127)
        masks = np.stack([labels == k for k in range(1, count + 1)]) if count else np.zeros((0, *labels.shape), bool)
        n = len(masks)
        return MaskProposals(
            rles=encode_coco_rle(masks),
            boxes=torch.zeros(n, 4, dtype=torch.int64),
            areas=torch.as_tensor(masks.reshape(n, -1).sum(1)),
            iou=torch.full((n,), 0.9),
            stability=torch.full((n,), 0.95),
            points=torch.zeros(n, 2),
            crop_boxes=torch.zeros(n, 4, dtype=torch.int64),
        )


SHAPE = (48, 40, 12)  # i, j, k
SPACING = (0.8, 0.7, 2.5)  # anisotropic


def ellipsoid(shape=SHAPE, centre=(24, 18, 6), axes=(14, 8, 4)) -> np.ndarray:
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(((g - c) / a) ** 2 for g, c, a in zip((ii, jj, kk), centre, axes)) <= 1.0


def affine() -> np.ndarray:
    theta = np.deg2rad(20)
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rotation @ np.diag(SPACING)
    out[:3, 3] = (-20.0, 35.5, -110.0)
    return out


def write_nifti(path, *, seed=0):
    import nibabel as nib

    rng = np.random.default_rng(seed)
    data = (rng.normal(0, 20, SHAPE) + 300 * ellipsoid()).astype(np.int16)  # an ellipsoid in noise
    nib.save(nib.Nifti1Image(data, affine()), str(path))
    return data


def write_dicom_series(folder, *, count=6, skip=(), series_uid=None, z0=-50.0, step=2.5, prefix="slice"):
    """A synthetic CT series, one file per slice (``skip``: slices left out); returns the
    slices' Hounsfield values by slice number."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    rows, cols = 20, 24
    rng = np.random.default_rng(1)
    written = {}
    for n in range(count):
        if n in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"{prefix}{n:03d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = series_uid, generate_uid(), "CT"
        ds.Rows, ds.Columns = rows, cols
        ds.PixelSpacing = [0.6, 0.9]  # row spacing, column spacing
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, 20.0, z0 + step * n]
        ds.SliceThickness = step
        ds.InstanceNumber = n + 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        pixels = rng.integers(0, 2000, (rows, cols)).astype(np.int16)
        ds.PixelData = pixels.tobytes()
        ds.save_as(str(path), enforce_file_format=True)
        written[n] = pixels.astype(np.float32) - 1024
    return written
