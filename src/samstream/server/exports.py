"""Exports of a session's masks, built from the stored masks (no model work).

Formats (:data:`EXPORT_FORMATS`): ``sav`` (zip of SA-V per-object PNGs
``<obj:03d>/<frame:05d>.png``), ``davis`` (zip of DAVIS palette PNGs ``<frame:05d>.png``,
pixel = object id), ``coco`` (one COCO-RLE JSON document), ``polygons`` (one JSON document of
COCO polygons), ``mp4`` (the video with the masks overlaid, every frame at the video's fps).
Every frame of the video is exported; a frame without a stored mask has empty masks.

Labels (the phrases of objects added from text) go into the JSON documents (``objects``,
each annotation's ``label``; COCO ``categories`` and ``category_id``, with the class-agnostic
category ``object`` for objects without a label) and are written on the MP4 overlay.
"""

from __future__ import annotations

import secrets
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

from ..io.atomic import atomic_output, atomic_write_json
from ..io.rle import decode_coco_rle
from ..io.writers import OverlayVideoWriter, PalettePngWriter, PerObjectPngWriter
from .masks import ObjectMask

EXPORT_FORMATS: tuple[str, ...] = ("sav", "davis", "coco", "polygons", "mp4")
UNLABELLED = "object"  # the COCO category of objects without a label


class ExportFile(NamedTuple):
    path: Path  # the file to send
    media_type: str
    filename: str  # the name offered for download
    folder: Path  # delete this once sent


class VideoMeta(NamedTuple):
    width: int
    height: int
    num_frames: int
    fps: float | None
    kind: str


def _frame_masks(
    stored: dict[int, dict[int, ObjectMask]], obj_ids: list[int], meta: VideoMeta
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, bool masks [N, H, W] of ``obj_ids``) for every frame of the video."""
    h, w = meta.height, meta.width
    for t in range(meta.num_frames):
        masks = np.zeros((len(obj_ids), h, w), dtype=bool)
        objs = stored.get(t, {})
        present = [(i, objs[o]) for i, o in enumerate(obj_ids) if o in objs]
        if present:
            decoded = decode_coco_rle([m.rle for _, m in present], (h, w))
            for (i, _), mask in zip(present, decoded):
                masks[i] = mask
        yield t, masks


def _zip_folder(folder: Path, target: Path) -> None:
    with atomic_output(target) as temp:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())


def mask_polygons(mask: np.ndarray, tolerance: float = 1.0) -> list[list[float]]:
    """Outer and inner outlines of a bool mask [H, W] as COCO polygons ``[x0, y0, x1, y1, ...]``
    in pixel coordinates (scikit-image's marching squares, simplified within ``tolerance`` px)."""
    from skimage.measure import approximate_polygon, find_contours

    if not mask.any():
        return []
    padded = np.pad(mask, 1).astype(np.float32)  # outlines close at the image border
    polygons = []
    for contour in find_contours(padded, 0.5):
        simple = approximate_polygon(contour, tolerance=tolerance) - 1.0  # (row, col), undo the pad
        if len(simple) < 3:
            continue
        xy = np.clip(simple[:, ::-1], 0, [mask.shape[1] - 1, mask.shape[0] - 1])
        polygons.append([round(float(v), 2) for v in xy.reshape(-1)])
    return polygons


def coco_categories(obj_ids: list[int], labels: Mapping[int, str]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """COCO ``categories`` (ids 1, 2, ... in the order of the objects' ids; :data:`UNLABELLED`
    for objects without a label) and obj_id -> category id."""
    ids: dict[str, int] = {}
    of_object: dict[int, int] = {}
    for obj_id in obj_ids:
        name = labels.get(obj_id, UNLABELLED)
        of_object[obj_id] = ids.setdefault(name, len(ids) + 1)
    return [{"id": i, "name": name} for name, i in ids.items()], of_object


def build_export(
    fmt: str,
    folder: Path,
    stored: dict[int, dict[int, ObjectMask]],
    obj_ids: list[int],
    meta: VideoMeta,
    frames: Callable[[], Any] | None = None,
    *,
    labels: Mapping[int, str] | None = None,
) -> ExportFile:
    """Write the export ``fmt`` into a new folder under ``folder``.

    ``frames``: opens a frame reader (``get_rgb``, ``close``) for the MP4 overlay.
    ``labels``: obj_id -> phrase of the objects that have one.
    Raises ValueError for an unknown format or one the session cannot give.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
    if fmt == "davis" and any(not 1 <= o <= 255 for o in obj_ids):
        raise ValueError(f"DAVIS palette PNGs hold object ids 1..255; this session has ids {obj_ids}")
    if fmt == "mp4" and (meta.kind != "video" or frames is None):
        raise ValueError("the MP4 overlay needs a video session (this one is an image)")
    work = Path(folder) / f"export-{secrets.token_hex(8)}"
    work.mkdir(parents=True)
    try:
        return _build(fmt, work, stored, obj_ids, meta, frames, dict(labels or {}))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _build(fmt, work: Path, stored, obj_ids, meta: VideoMeta, frames, labels: dict[int, str]) -> ExportFile:
    if fmt in ("sav", "davis"):
        content = work / "masks"
        writer = PerObjectPngWriter(content) if fmt == "sav" else PalettePngWriter(content)
        with writer:
            for t, masks in _frame_masks(stored, obj_ids, meta):
                writer.write(t, obj_ids, masks)
        target = work / f"masks_{fmt}.zip"
        _zip_folder(content, target)
        return ExportFile(target, "application/zip", target.name, work)
    info = {"width": meta.width, "height": meta.height, "num_frames": meta.num_frames, "fps": meta.fps}
    objects = [{"obj_id": o, "label": labels.get(o)} for o in obj_ids]
    if fmt == "coco":
        categories, category_of = coco_categories(obj_ids, labels)
        annotations = [
            {"frame_index": t, "obj_id": o, "category_id": category_of[o], "label": labels.get(o),
             "segmentation": m.rle, "area": m.area, "score": m.score}
            for t in sorted(stored)
            for o, m in sorted(stored[t].items())
            if o in obj_ids
        ]
        target = work / "masks_coco_rle.json"
        atomic_write_json(
            target,
            {"video": info, "obj_ids": obj_ids, "objects": objects, "categories": categories, "annotations": annotations},
        )
        return ExportFile(target, "application/json", target.name, work)
    if fmt == "polygons":
        annotations = []
        for t, masks in _frame_masks(stored, obj_ids, meta):
            for o, mask in zip(obj_ids, masks):
                if t in stored and o in stored[t]:
                    annotations.append(
                        {"frame_index": t, "obj_id": o, "label": labels.get(o), "polygons": mask_polygons(mask), "coords": "pixels"}
                    )
        target = work / "masks_polygons.json"
        atomic_write_json(target, {"video": info, "obj_ids": obj_ids, "objects": objects, "annotations": annotations})
        return ExportFile(target, "application/json", target.name, work)
    # mp4: every frame of the video, at its own fps
    target = work / "overlay.mp4"
    reader = frames()
    try:
        with OverlayVideoWriter(target, meta.fps, reader, labels=labels or None) as writer:
            for t, masks in _frame_masks(stored, obj_ids, meta):
                writer.write(t, obj_ids, masks)
    finally:
        reader.close()
    return ExportFile(target, "video/mp4", target.name, work)
