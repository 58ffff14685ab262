"""The labels side-file: which phrase each tracked object stands for, beside any mask output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from .atomic import atomic_write_json

__all__ = ["ObjectLabel", "OBJECTS_FILE", "write_object_labels", "read_object_labels"]

OBJECTS_FILE = "objects.json"


@dataclass(frozen=True)
class ObjectLabel:
    """One tracked object: its id, phrase, the detector's score and the frame it was found on;
    ``dropped_frame``: the frame from which it is no longer tracked (None while tracked)."""

    obj_id: int
    label: str
    score: float
    first_frame: int
    dropped_frame: int | None = None


def write_object_labels(path: Path, objects: Mapping[int, ObjectLabel], *, detector: str = "", phrases: tuple[str, ...] = ()) -> None:
    """``{"detector", "phrases", "objects": [ObjectLabel fields, ...]}`` sorted by id, written atomically."""
    atomic_write_json(
        path,
        {"detector": detector, "phrases": list(phrases), "objects": [asdict(objects[k]) for k in sorted(objects)]},
        indent=2,
    )


def read_object_labels(path: Path) -> dict[int, ObjectLabel]:
    """What :func:`write_object_labels` wrote: obj_id -> :class:`ObjectLabel`."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return {int(o["obj_id"]): ObjectLabel(**o) for o in document["objects"]}
