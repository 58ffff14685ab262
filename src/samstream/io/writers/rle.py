"""COCO RLE records of every frame in one JSON-lines (or JSON) file, and the reader for it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..atomic import atomic_write_bytes
from ..rle import coco_rle_areas, coco_rle_boxes_xywh, encode_coco_rle, require_pycocotools
from .base import MaskWriter, PathLike

__all__ = ["CocoRleWriter", "encode_rle_records", "read_coco_rle"]


def encode_rle_records(
    frame_idx: int, obj_ids: Sequence[int], masks: np.ndarray, labels: Mapping[int, str] | None = None
) -> list[dict[str, Any]]:
    """COCO RLE records (``frame_idx``, ``obj_id``, ``segmentation``, ``area``, ``bbox`` XYWH, and
    ``label`` for the objects ``labels`` names) for one frame."""
    if len(obj_ids) == 0:
        return []
    rles = encode_coco_rle(masks)
    areas = coco_rle_areas(rles)
    boxes = coco_rle_boxes_xywh(rles)
    records = []
    for obj_id, rle, area, box in zip(obj_ids, rles, areas, boxes):
        record = {
            "frame_idx": int(frame_idx),
            "obj_id": int(obj_id),
            "segmentation": rle,
            "area": int(area),
            "bbox": [float(value) for value in box],
        }
        if labels and int(obj_id) in labels:
            record["label"] = labels[int(obj_id)]
        records.append(record)
    return records


class CocoRleWriter(MaskWriter):
    """COCO run-length-encoded masks of all frames in one file (masks at video resolution).

    The file format follows the suffix of ``path``:

    * ``.jsonl``: JSON lines, one record per line, appended frame by frame (one
      ``write`` system call per frame, cheap for long videos).  A crash can at
      worst leave a torn last line, which :func:`read_coco_rle` ignores.
    * anything else (e.g. ``.json``): one JSON list of records, rewritten
      atomically after every frame, so the file is always a valid, complete
      JSON document.  Each rewrite costs the size of the whole file: prefer
      ``.jsonl`` for very long videos.

    Record: ``{"frame_idx", "obj_id", "segmentation": {"size": [H, W], "counts": str},
    "area": int, "bbox": [x, y, w, h]}``, plus ``"label"`` for objects in ``labels`` (obj_id ->
    phrase; a dict the caller may keep filling as objects are found).  A frame written twice appears twice;
    readers should let the last record of each ``(frame_idx, obj_id)`` win.
    """

    def __init__(self, path: PathLike, video_height: int, video_width: int, *, labels: Mapping[int, str] | None = None) -> None:
        super().__init__()
        for name, value in (("video_height", video_height), ("video_width", video_width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        require_pycocotools()  # fail now rather than on the first frame
        self.path = Path(path)
        self.video_height = int(video_height)
        self.video_width = int(video_width)
        self.json_lines = self.path.suffix.lower() == ".jsonl"
        self.labels: Mapping[int, str] = labels if labels is not None else {}
        self._records: list[str] = []
        self._descriptor: int | None = None
        if self.json_lines:
            atomic_write_bytes(self.path, b"")
            self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        else:
            self._flush_document()

    def _flush_document(self) -> None:
        body = ",\n".join(self._records)
        text = "[\n" + body + "\n]\n" if body else "[]\n"
        atomic_write_bytes(self.path, text.encode("utf-8"))

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        if masks.shape[1:] != (self.video_height, self.video_width):
            raise ValueError(
                f"masks of frame {frame_idx} are {masks.shape[1:]} (H, W) but the writer expects "
                f"({self.video_height}, {self.video_width})"
            )
        lines = [json.dumps(record, separators=(",", ":")) for record in encode_rle_records(frame_idx, obj_ids, masks, self.labels)]
        if self.json_lines:
            if not lines:
                return
            assert self._descriptor is not None
            data = "".join(line + "\n" for line in lines).encode("utf-8")
            view = memoryview(data)
            while view:
                written = os.write(self._descriptor, view)
                view = view[written:]
        else:
            self._records.extend(lines)
            self._flush_document()

    def _finish(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def read_coco_rle(path: PathLike) -> list[dict[str, Any]]:
    """Read the records written by :class:`CocoRleWriter` (``.json`` list or ``.jsonl`` lines).

    In a ``.jsonl`` file, a last line without its newline (a write torn by a
    crash) is ignored; any other malformed line raises ``ValueError``.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"RLE file not found: '{file_path}'") from None
    if file_path.suffix.lower() != ".jsonl":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"'{file_path}' is not valid JSON: {error}") from None
        if not isinstance(records, list):
            raise ValueError(f"'{file_path}' must hold a JSON list of records")
        return records
    # the piece after the last newline is "" for a complete file, or a torn record: skip it
    complete_lines = text.split("\n")[:-1]
    records = []
    for number, line in enumerate(complete_lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"'{file_path}' line {number} is not valid JSON: {error}") from None
    return records
