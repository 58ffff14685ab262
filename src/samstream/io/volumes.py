"""3-D medical volumes: NIfTI files and DICOM series in, NIfTI label volumes out, intensity windows.

A :class:`Volume` is a voxel array ``data`` [I, J, K] with the 4 x 4 ``affine`` from voxel
indices (i, j, k) to RAS+ millimetres (the NIfTI convention). Spacing may differ per axis
(anisotropic volumes are kept as they are: the label volume has the input's affine and
spacing). DICOM series are read with pydicom: one series per folder, slices ordered along
the slice normal, gaps and mixed series refused with the names of the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


import numpy as np

from .atomic import atomic_output

__all__ = [
    "Volume",
    "IntensityWindow",
    "WINDOW_PRESETS",
    "VolumeError",
    "is_volume_path",
    "load_volume",
    "load_nifti",
    "load_dicom_series",
    "save_label_nifti",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class VolumeError(ValueError):
    """A volume that cannot be read as one consistent 3-D image (the message names the files)."""


@dataclass(frozen=True)
class Volume:
    """data: voxels [I, J, K] (float32, Hounsfield units for CT from DICOM); affine: float64
    [4, 4] voxel -> RAS+ mm; source: what it was read from."""

    data: np.ndarray
    affine: np.ndarray
    source: str

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm (lengths of the affine's columns)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres (mm^3 / 1000)."""
        sx, sy, sz = self.spacing
        return sx * sy * sz / 1000.0


@dataclass(frozen=True)
class IntensityWindow:
    """Voxel values [center - width/2, center + width/2] mapped linearly to 0..255, clipped."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width)) or self.width <= 0:
            raise ValueError(f"window needs a finite CENTER and a WIDTH > 0, got {self.center},{self.width}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Any-shape values -> uint8 of the same shape."""
        low = self.center - self.width / 2.0
        scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / self.width)
        return np.clip(scaled, 0.0, 255.0).round().astype(np.uint8)

    @classmethod
    def from_percentiles(cls, data: np.ndarray, low: float = 0.5, high: float = 99.5) -> "IntensityWindow":
        """The window spanning two percentiles of ``data`` (the default when none is given)."""
        step = max(1, data.size // (1 << 22))
        lo, hi = np.percentile(data.reshape(-1)[::step], [low, high])
        hi = hi if hi > lo else lo + 1.0
        return cls((lo + hi) / 2.0, hi - lo)


#: Usual CT windows (center, width) in Hounsfield units.
WINDOW_PRESETS: dict[str, IntensityWindow] = {
    "soft-tissue": IntensityWindow(40.0, 400.0),
    "lung": IntensityWindow(-600.0, 1500.0),
    "bone": IntensityWindow(400.0, 1800.0),
    "brain": IntensityWindow(40.0, 80.0),
    "liver": IntensityWindow(60.0, 160.0),
}


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise ImportError("NIfTI volumes need nibabel: pip install 'samstream[medical]'") from None
    return nibabel


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise ImportError("DICOM series need pydicom: pip install 'samstream[medical]'") from None
    return pydicom


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(s) for s in NIFTI_SUFFIXES)


_NOT_DICOM = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".txt", ".json"})


def _dicom_files(folder: Path) -> list[Path]:
    """Files of ``folder`` that are DICOM (a ``.dcm`` name or the ``DICM`` preamble; image
    files of a frame folder are not opened)."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == ".dcm":
            found.append(path)
            continue
        if suffix in _NOT_DICOM:
            continue
        try:
            with open(path, "rb") as handle:
                handle.seek(128)
                if handle.read(4) == b"DICM":
                    found.append(path)
        except OSError:
            continue
    return found


def is_volume_path(path: str | Path) -> bool:
    """A NIfTI file, or a folder holding DICOM files."""
    path = Path(path)
    if is_nifti(path):
        return True
    return path.is_dir() and bool(_dicom_files(path))


def load_nifti(path: str | Path) -> Volume:
    nib = _nibabel()
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for a bad file
        raise VolumeError(f"cannot read NIfTI file {path}: {exc}") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[:, :, :, 0]
    if data.ndim != 3:
        raise VolumeError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    return Volume(data=data, affine=np.asarray(image.affine, dtype=np.float64), source=str(path))


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def load_dicom_series(folder: str | Path) -> Volume:
    """One DICOM series from a folder, as a :class:`Volume` in RAS+ (DICOM's LPS flipped)."""
    pydicom = _pydicom()
    folder = Path(folder)
    files = _dicom_files(folder)
    if not files:
        raise VolumeError(f"no DICOM files in {folder}")
    headers = []
    for path in files:
        try:
            headers.append((path, pydicom.dcmread(path, stop_before_pixels=True)))
        except Exception as exc:  # noqa: BLE001
            raise VolumeError(f"cannot read DICOM file {path}: {exc}") from None
    series: dict[str, list[Path]] = {}
    for path, ds in headers:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "?")), []).append(path)
    if len(series) > 1:
        parts = "; ".join(f"series {uid}: {_names(paths)}" for uid, paths in series.items())
        raise VolumeError(f"{folder} mixes {len(series)} DICOM series ({parts}); put each series in its own folder")
    missing = [p.name for p, ds in headers if not hasattr(ds, "ImagePositionPatient") or not hasattr(ds, "ImageOrientationPatient")]
    if missing:
        raise VolumeError(f"DICOM files without ImagePositionPatient/ImageOrientationPatient: {', '.join(missing[:3])}")
    orientation = np.array(headers[0][1].ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array([np.array(ds.ImagePositionPatient, dtype=np.float64) for _, ds in headers])
    order = np.argsort(positions @ normal, kind="stable")
    headers = [headers[i] for i in order]
    positions = positions[order]
    along = positions @ normal
    steps = np.diff(along)
    if len(headers) > 1:
        if np.any(np.abs(steps) < 1e-4):
            dup = int(np.flatnonzero(np.abs(steps) < 1e-4)[0])
            raise VolumeError(
                f"DICOM files {headers[dup][0].name} and {headers[dup + 1][0].name} are at the same position: "
                "duplicate slices or mixed acquisitions"
            )
        spacing = float(np.median(steps))
        gaps = np.flatnonzero(steps > 1.5 * spacing)
        if gaps.size:
            g = int(gaps[0])
            raise VolumeError(
                f"missing slices in {folder}: between {headers[g][0].name} and {headers[g + 1][0].name} the gap is "
                f"{steps[g]:.3g} mm, the slice spacing {spacing:.3g} mm ({gaps.size} gap(s) in all)"
            )
    else:
        spacing = float(getattr(headers[0][1], "SliceThickness", 1.0) or 1.0)
    slices = []
    shape = None
    for path, _ in headers:
        ds = pydicom.dcmread(path)
        try:
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # noqa: BLE001
            raise VolumeError(f"cannot decode the pixels of DICOM file {path}: {exc}") from None
        if shape is None:
            shape = pixels.shape
        elif pixels.shape != shape:
            raise VolumeError(f"DICOM file {path.name} is {pixels.shape}, the first slice {shape}: mixed series")
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        slices.append(pixels * slope + intercept)
    stack = np.stack(slices, axis=-1)  # [rows, cols, slices]
    data = np.ascontiguousarray(stack.transpose(1, 0, 2))  # [cols (i), rows (j), slices (k)]
    row_spacing, col_spacing = (float(v) for v in headers[0][1].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # i: along a row, one column to the next
    lps[:3, 1] = col_dir * row_spacing  # j: down a column, one row to the next
    lps[:3, 2] = normal * spacing
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    return Volume(data=data, affine=affine, source=str(folder))


def load_volume(path: str | Path) -> Volume:
    """A NIfTI file or a DICOM series folder."""
    path = Path(path)
    if is_nifti(path):
        return load_nifti(path)
    if path.is_dir():
        return load_dicom_series(path)
    raise VolumeError(f"{path}: not a NIfTI file (.nii, .nii.gz) or a folder of DICOM files")


def save_label_nifti(path: str | Path, labels: np.ndarray, volume: Volume) -> None:
    """A uint16 label volume [I, J, K] with ``volume``'s affine (so its spacing), atomically."""
    nib = _nibabel()
    if labels.shape != volume.data.shape:
        raise ValueError(f"labels have shape {labels.shape}, the volume {volume.data.shape}")
    image = nib.Nifti1Image(labels.astype(np.uint16), volume.affine)
    image.header.set_zooms(volume.spacing)
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    name = Path(path).name
    suffix = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    with atomic_output(path) as temp:
        staged = temp.with_name(temp.name + suffix)  # nibabel picks the compression by the name
        nib.save(image, str(staged))
        staged.replace(temp)
