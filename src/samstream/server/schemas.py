"""Request and response bodies of the HTTP API (pydantic models, shown at /docs).

Names follow SAM 3's session API and Hugging Face's video session: ``session_id``,
``frame_index``, ``obj_id``, ``points``, ``point_labels``, ``box``,
``propagation_direction``, ``start_frame_index``, ``max_frame_num_to_track``. Every
coordinate comes with ``coords``: ``"pixels"`` of the image / video or ``"normalized"`` to
[0, 1]. Masks are COCO RLE: ``{"size": [H, W], "counts": str}`` (pycocotools' compact
string, column-major runs starting with background).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Coords = Literal["pixels", "normalized"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RleMask(_Strict):
    """A COCO RLE mask at the image's / video's size."""

    size: tuple[int, int] = Field(description="[height, width]")
    counts: str = Field(description="pycocotools' compressed run lengths")


class ObjectMaskOut(_Strict):
    obj_id: int
    mask: RleMask
    area: int = Field(description="pixels in the mask")
    score: float = Field(description="presence logit: > 0 when the model sees the object")


class FrameMasks(_Strict):
    session_id: str
    frame_index: int
    objects: list[ObjectMaskOut]


class ObjectPrompts(_Strict):
    obj_id: int
    frame_indices: list[int] = Field(description="frames where the object has prompts")


class ObjectLabelOut(_Strict):
    """The phrase an object was added for (text prompts), with the detector's score."""

    obj_id: int
    label: str
    score: float = Field(description="the detector's confidence in [0, 1]")
    frame_index: int = Field(description="the frame it was found on")


class SessionInfo(_Strict):
    session_id: str
    kind: Literal["image", "video"]
    width: int
    height: int
    num_frames: int
    fps: Optional[float] = Field(description="frames per second (None for an image)")
    obj_ids: list[int]
    prompts: list[ObjectPrompts]
    frames_with_masks: int
    propagating: bool
    streaming: bool = Field(description="long video: only the memories later frames can use are kept")
    labels: list[ObjectLabelOut] = Field(default_factory=list, description="objects added from a phrase")


class PointsPrompt(_Strict):
    """Clicks and/or a box for one object on one frame; replaces that object's earlier
    prompts on the frame (send the full set each time)."""

    frame_index: int = Field(ge=0)
    obj_id: int = Field(ge=0)
    points: Optional[list[tuple[float, float]]] = Field(default=None, description="[[x, y], ...]")
    point_labels: Optional[list[int]] = Field(default=None, description="1 foreground, 0 background, one per point")
    box: Optional[tuple[float, float, float, float]] = Field(default=None, description="[x0, y0, x1, y1]")
    coords: Coords = "pixels"


class MaskPrompt(_Strict):
    frame_index: int = Field(ge=0)
    obj_id: int = Field(ge=0)
    mask: RleMask


class ClearPrompts(_Strict):
    frame_index: int = Field(ge=0)
    obj_id: int = Field(ge=0)


class ClearResult(_Strict):
    frame: FrameMasks
    object_removed: bool = Field(description="the object had no other prompt, so it was removed")


class RemovedObject(_Strict):
    obj_ids: list[int] = Field(description="the objects left")
    refreshed: list[FrameMasks] = Field(description="new masks of the frames the object had prompts on")


class PropagateRequest(_Strict):
    propagation_direction: Literal["forward", "backward", "both"] = "forward"
    start_frame_index: Optional[int] = Field(default=None, ge=0, description="default: the first prompted frame")
    max_frame_num_to_track: Optional[int] = Field(default=None, ge=0, description="frames after the start (default: all)")


class PropagationFrameEvent(_Strict):
    """One NDJSON line of the propagation stream per tracked frame."""

    type: Literal["frame"] = "frame"
    frame_index: int
    done: int
    total: int
    progress: str = Field(description="'frame k of n'")
    fps: float
    objects: list[ObjectMaskOut]


class PropagationEndEvent(_Strict):
    """The last NDJSON line of the propagation stream."""

    type: Literal["end"] = "end"
    status: Literal["done", "cancelled", "error"]
    done: int
    total: int
    progress: str
    seconds: float
    message: Optional[str] = None


class CancelResult(_Strict):
    cancelled: bool = Field(description="a propagation was running and has been told to stop")


class TextPrompt(_Strict):
    """Phrases naming objects on one frame: a detector finds them and each detection becomes a
    new object (its box as prompt), labelled with its phrase."""

    frame_index: int = Field(ge=0)
    text: str = Field(max_length=2000, description='phrases separated by periods, e.g. "cat. red car." (lowercased)')
    detector: Optional[str] = Field(default=None, description="one of /v1/info's detectors (default: the server's --detector)")
    box_threshold: Optional[float] = Field(default=None, ge=0.0, le=1.0, description="minimum detection score (default: the detector's)")
    text_threshold: Optional[float] = Field(
        default=None, ge=0.0, le=1.0, description="Grounding DINO: minimum score of a label's tokens (default: the detector's)"
    )
    first_obj_id: Optional[int] = Field(
        default=None, ge=1, description="new objects get the lowest free ids from this one on (default: above every id in use)"
    )


class TextObjectOut(_Strict):
    obj_id: int
    label: str = Field(description="the phrase the detection names")
    score: float = Field(description="the detector's confidence in [0, 1]")
    box: tuple[float, float, float, float] = Field(description="[x0, y0, x1, y1], the box prompt")
    coords: Literal["pixels"] = "pixels"


class TextResult(_Strict):
    session_id: str
    frame_index: int
    detector: str = Field(description="the detector that ran")
    phrases: list[str] = Field(description="the phrases as the detector was given them")
    found: int = Field(description="detections made (more than added when the object limit is reached)")
    added: list[TextObjectOut] = Field(description="the new objects, best detection first")
    objects: list[ObjectMaskOut] = Field(description="every object's mask on the frame, the new ones included")


class EverythingRequest(_Strict):
    frame_index: int = Field(default=0, ge=0)
    points_per_side: int = Field(default=16, ge=1, le=64)
    pred_iou_thresh: float = Field(default=0.7, ge=0.0, le=1.0)
    stability_score_thresh: float = Field(default=0.85, ge=0.0, le=1.0)
    min_area: int = Field(default=0, ge=0, description="drop masks with fewer pixels")


class EverythingMask(_Strict):
    mask: RleMask
    area: int
    bbox: tuple[float, float, float, float] = Field(description="[x, y, width, height]")
    coords: Literal["pixels"] = "pixels"
    predicted_iou: float
    stability_score: float


class EverythingResult(_Strict):
    session_id: str
    frame_index: int
    masks: list[EverythingMask]


class ObjectTimeline(_Strict):
    obj_id: int
    areas: list[Optional[int]] = Field(description="per frame; None where the object has no mask yet")
    scores: list[Optional[float]]


class Timeline(_Strict):
    session_id: str
    num_frames: int
    objects: list[ObjectTimeline]


class ProblemOut(_Strict):
    frame_index: int
    obj_id: int
    kind: Literal["vanished", "score_drop", "area_jump"]
    detail: str


class Problems(_Strict):
    session_id: str
    problems: list[ProblemOut]


class Limits(_Strict):
    max_upload_bytes: int
    max_duration_s: float
    max_pixels: int
    max_sessions: int
    idle_timeout_s: float
    max_objects: int
    queue_size: int


class ServerInfo(_Strict):
    version: str
    model: str
    model_note: str = Field("", description="what the model is good for (set for the bundled models)")
    image_size: int
    device: str
    limits: Limits
    image_types: list[str]
    video_types: list[str]
    export_formats: list[str]
    sessions_open: int
    detector: str = Field(description="the detector of text prompts when a request names none")
    detectors: list[str] = Field(description="the detectors a text prompt may name")
    memory: str = Field(description="the memory strategy every session tracks with (serve --memory)")


class ErrorBody(BaseModel):
    detail: str
