"""Inference over a whole dataset: one video at a time through the video predictor.

Each video's first annotated masks are the prompts (with ``track_objects_appearing_later``,
each object is added on the frame where it first appears); every object is tracked forward
and the predictions are written in the input's layout, frame by frame and atomically, one
folder per video named like the input. When a video is finished a marker is written to
``OUTPUT/.samstream/<video>.done.json``; a rerun skips videos that have one. A video that
fails is reported with its error and the others carry on.

``run_dataset(..., workers=N)`` runs videos in N processes, each with its own model.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .layouts import (
    LayoutError,
    VideoInput,
    get_layout,
    labels_from_masks,
    open_mask_folder,
    read_id_png,
    write_binary_png,
    write_palette_png,
)

__all__ = [
    "ModelSpec",
    "InferenceConfig",
    "VideoOutcome",
    "PromptGroup",
    "read_prompts",
    "make_predictor",
    "infer_video",
    "is_complete",
    "run_dataset",
    "MARKER_DIR",
]

MARKER_DIR = ".samstream"


@dataclass(frozen=True)
class ModelSpec:
    """How to build the model (picklable, so every worker process or actor builds its own).

    model: official name, YAML path or a ``SAM2Config``; checkpoint: weights file (None keeps
    random weights, for tests); threads: torch intra-op threads per worker (None: leave as is).
    """

    model: object
    checkpoint: Path | None = None
    device: str = "cpu"
    bf16: bool = False
    int8: bool = False  # int8 linear layers (CPU only, samstream.accel.quantize_int8)
    apply_postprocessing: bool = False  # the reference evaluates without hole filling
    threads: int | None = None

    def build(self):
        import torch

        from ..build import build_model

        if self.threads is not None:
            torch.set_num_threads(max(1, int(self.threads)))
        return build_model(
            self.model,
            self.checkpoint,
            device=self.device,
            apply_postprocessing=self.apply_postprocessing,
            for_video=True,
            quantize="int8" if self.int8 else None,
        )

    def autocast(self):
        import torch

        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast("cuda" if str(self.device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


@dataclass(frozen=True)
class InferenceConfig:
    """What to run and where to write it.

    per_object_png: one PNG per object per frame (``<obj:03d>/<frame>.png``); None follows
    the layout (SA-V per object, DAVIS / YouTube-VOS palette). memory: memory strategy name;
    output_lag: fixed-lag output (see :class:`~samstream.video.predictor.VideoPredictorOptions`).
    """

    output_dir: Path
    layout: str = "davis"
    per_object_png: bool | None = None
    track_objects_appearing_later: bool = False
    memory: str = "default"
    fill_hole_area: int = 0
    output_lag: int = 0

    def __post_init__(self) -> None:
        get_layout(self.layout)
        if self.fill_hole_area < 0:
            raise ValueError(f"fill_hole_area must be >= 0, got {self.fill_hole_area}")
        if not isinstance(self.memory, str) or not self.memory:
            raise ValueError(f"memory must be a strategy name, got {self.memory!r}")
        if isinstance(self.output_lag, bool) or not isinstance(self.output_lag, int) or self.output_lag < 0:
            raise ValueError(f"output_lag must be an integer >= 0, got {self.output_lag!r}")

    @property
    def writes_per_object(self) -> bool:
        return get_layout(self.layout).per_object if self.per_object_png is None else self.per_object_png


@dataclass(frozen=True)
class VideoOutcome:
    """What happened to one video: status is "done", "skipped" (already complete) or "failed"."""

    video: str
    status: str
    frames: int = 0
    objects: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class PromptGroup:
    """Objects added together on one frame: masks [K, H, W] bool for obj_ids [K]."""

    frame_idx: int
    obj_ids: tuple[int, ...]
    masks: np.ndarray


# --------------------------------------------------------------------------- prompts


def _frame_size(video: VideoInput) -> tuple[int, int]:
    from PIL import Image

    for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
        path = video.frames_dir / f"{video.frame_names[0]}{suffix}"
        if path.is_file():
            with Image.open(path) as img:
                return img.size[1], img.size[0]
    raise LayoutError(f"video {video.name}: cannot find the file of frame {video.frame_names[0]}")


def read_prompts(video: VideoInput, layout: str, track_objects_appearing_later: bool = False) -> list[PromptGroup]:
    """The prompt masks of a video, grouped by the frame they are given on (earliest first).

    Without ``track_objects_appearing_later`` only the first annotated frame's objects are
    used. Raises :class:`LayoutError` for annotations on frames the video does not have,
    masks of another size than the frames, or no object at all.
    """
    spec = get_layout(layout)
    folder = open_mask_folder(video.annotations, per_object=spec.per_object)
    index = {stem: i for i, stem in enumerate(video.frame_names)}
    stems = folder.frames()
    if not stems:
        raise LayoutError(f"video {video.name}: no annotation PNGs in {video.annotations}")
    unknown = [s for s in stems if s not in index]
    if unknown:
        raise LayoutError(f"video {video.name}: annotations {unknown[:3]} have no frame of that name in {video.frames_dir}")
    height, width = _frame_size(video)
    first_seen: dict[int, tuple[int, np.ndarray]] = {}
    for stem in stems if track_objects_appearing_later else stems[:1]:
        for obj, mask in folder.read_frame(stem).items():
            if mask.shape != (height, width):
                raise LayoutError(
                    f"video {video.name}: annotation {stem} is {mask.shape[1]}x{mask.shape[0]} (WxH) "
                    f"but the frames are {width}x{height}"
                )
            if obj not in first_seen and mask.any():
                first_seen[obj] = (index[stem], mask)
    if not first_seen:
        where = "any annotated frame" if track_objects_appearing_later else f"the first annotated frame ({stems[0]})"
        raise LayoutError(f"video {video.name}: no object in {where}")
    groups: dict[int, list[int]] = {}
    for obj, (t, _) in sorted(first_seen.items()):
        groups.setdefault(t, []).append(obj)
    return [
        PromptGroup(frame_idx=t, obj_ids=tuple(objs), masks=np.stack([first_seen[o][1] for o in objs]))
        for t, objs in sorted(groups.items())
    ]


# --------------------------------------------------------------------------- one video


def make_predictor(model, config: InferenceConfig):
    """The video predictor for ``config`` (objects made disjoint for palette outputs, as the
    reference evaluation does)."""
    from ..video.predictor import VideoPredictor, VideoPredictorOptions

    options = VideoPredictorOptions(
        fill_hole_area=config.fill_hole_area, non_overlap_masks=not config.writes_per_object, output_lag=config.output_lag
    )
    return VideoPredictor(model, options, memory=config.memory)


def _marker(config: InferenceConfig, video: str) -> Path:
    return Path(config.output_dir) / MARKER_DIR / f"{video}.done.json"


def is_complete(video: VideoInput, config: InferenceConfig) -> bool:
    """Whether a previous run finished this video with the same output format."""
    path = _marker(config, video.name)
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return done.get("frames") == len(video.frame_names) and done.get("per_object") == config.writes_per_object


class _VideoWriter:
    """Writes one video's masks; a later prompt group merges into frames already written."""

    def __init__(self, out_dir: Path, per_object: bool, shape: tuple[int, int]) -> None:
        self.out_dir = out_dir
        self.per_object = per_object
        self.shape = shape

    def write(self, stem: str, obj_ids: Sequence[int], masks: np.ndarray, *, merge: bool) -> None:
        """masks [K, H, W] bool of obj_ids on frame ``stem``."""
        if self.per_object:
            for obj, mask in zip(obj_ids, masks):
                write_binary_png(self.out_dir / f"{int(obj):03d}" / f"{stem}.png", mask)
            return
        ids = labels_from_masks(masks, list(obj_ids)) if len(obj_ids) else np.zeros(self.shape, np.uint8)
        path = self.out_dir / f"{stem}.png"
        if merge and path.is_file():
            old = read_id_png(path)
            # where both have an object, the smaller id wins (as within one frame)
            ids = np.where(old == 0, ids, np.where(ids == 0, old, np.minimum(old, ids)))
        write_palette_png(path, ids)


def infer_video(
    predictor,
    video: VideoInput,
    config: InferenceConfig,
    *,
    autocast=None,
    on_frame: Callable[[], None] | None = None,
) -> VideoOutcome:
    """Track every prompted object of ``video`` and write its masks; never raises for a bad
    video (the outcome carries the error). ``on_frame`` is called once per frame written."""
    import torch

    start = time.perf_counter()
    try:
        groups = read_prompts(video, config.layout, config.track_objects_appearing_later)
        height, width = _frame_size(video)
        n = len(video.frame_names)
        writer = _VideoWriter(Path(config.output_dir) / video.name, config.writes_per_object, (height, width))
        empty = np.zeros((0, height, width), dtype=bool)
        with autocast or contextlib.nullcontext(), torch.inference_mode():
            for g, group in enumerate(groups):
                if g == 0 and not config.writes_per_object:
                    for t in range(group.frame_idx):  # frames before any object: background
                        writer.write(video.frame_names[t], (), empty, merge=False)
                        if on_frame:
                            on_frame()
                if config.writes_per_object:
                    blank = np.zeros((len(group.obj_ids), height, width), dtype=bool)
                    for t in range(group.frame_idx):  # before the object appears: empty masks
                        writer.write(video.frame_names[t], group.obj_ids, blank, merge=False)
                session = predictor.open_session(str(video.frames_dir))
                if session.num_frames != n:
                    raise LayoutError(f"video {video.name}: the predictor reads {session.num_frames} frames, expected {n}")
                for obj, mask in zip(group.obj_ids, group.masks):
                    predictor.add_mask(session, group.frame_idx, obj, mask)
                for t, obj_ids, logits in predictor.propagate(session, start_frame_idx=group.frame_idx, progress=False):
                    masks = (logits[:, 0] > 0).cpu().numpy()
                    writer.write(video.frame_names[t], obj_ids, masks, merge=g > 0)
                    if on_frame and g == 0:
                        on_frame()
                del session
        objects = sum(len(gr.obj_ids) for gr in groups)
        seconds = time.perf_counter() - start
        from ..io.atomic import atomic_write_json

        atomic_write_json(
            _marker(config, video.name),
            {"frames": n, "objects": objects, "per_object": config.writes_per_object, "seconds": round(seconds, 3)},
        )
        return VideoOutcome(video=video.name, status="done", frames=n, objects=objects, seconds=seconds)
    except Exception as exc:  # one bad video must not stop the dataset
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (LayoutError, ValueError, IndexError, OSError)):
            message += "\n" + traceback.format_exc(limit=4)
        return VideoOutcome(video=video.name, status="failed", seconds=time.perf_counter() - start, error=message)


# --------------------------------------------------------------------------- a dataset

# Per worker process: the predictor built once by the pool initializer. Lives only in the
# worker processes of run_dataset (never set in the parent).
_WORKER: dict = {}


def _init_worker(spec: ModelSpec, config: InferenceConfig, ticks) -> None:
    _WORKER["predictor"] = make_predictor(spec.build(), config)
    _WORKER["spec"] = spec
    _WORKER["config"] = config
    _WORKER["ticks"] = ticks


def _worker_video(video: VideoInput) -> VideoOutcome:
    ticks = _WORKER["ticks"]
    return infer_video(
        _WORKER["predictor"],
        video,
        _WORKER["config"],
        autocast=_WORKER["spec"].autocast(),
        on_frame=lambda: ticks.put(1),
    )


def split_complete(videos, config: InferenceConfig) -> tuple[dict[str, VideoOutcome], list]:
    """(outcomes of the videos whose outputs are already complete, the videos still to run)."""
    outcomes: dict[str, VideoOutcome] = {}
    todo = []
    for v in videos:
        if is_complete(v, config):
            outcomes[v.name] = VideoOutcome(video=v.name, status="skipped", frames=len(v.frame_names))
        else:
            todo.append(v)
    return outcomes, todo


def run_dataset(
    videos: Sequence[VideoInput],
    spec: ModelSpec,
    config: InferenceConfig,
    *,
    workers: int = 1,
    progress: bool = True,
    model=None,
) -> list[VideoOutcome]:
    """Run every video not yet complete; returns one outcome per video, in input order.

    workers: processes, each with its own model (1: in this process; ``model`` may then be
    given already built). Each worker gets ``cpu_count // workers`` torch threads unless
    ``spec.threads`` says otherwise.
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    outcomes, todo = split_complete(videos, config)
    total_frames = sum(len(v.frame_names) for v in todo)
    video_bar = tqdm(total=len(videos), initial=len(videos) - len(todo), desc="videos", unit="video", disable=not progress)
    frame_bar = tqdm(total=total_frames, desc="frames", unit="frame", disable=not progress, leave=False)
    try:
        if workers == 1 or len(todo) <= 1:
            predictor = make_predictor(model if model is not None else spec.build(), config)
            for v in todo:
                outcome = infer_video(predictor, v, config, autocast=spec.autocast(), on_frame=lambda: frame_bar.update(1))
                outcomes[v.name] = outcome
                video_bar.update(1)
        else:
            _run_pool(todo, spec, config, min(workers, len(todo)), outcomes, video_bar, frame_bar)
    finally:
        frame_bar.close()
        video_bar.close()
    return [outcomes[v.name] for v in videos]


def _run_pool(todo, spec, config, workers, outcomes, video_bar, frame_bar) -> None:
    if spec.threads is None:
        spec = ModelSpec(**{**asdict_shallow(spec), "threads": max(1, (os.cpu_count() or 1) // workers)})
    context = multiprocessing.get_context("spawn")
    ticks = context.Queue()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(spec, config, ticks)) as pool:
        pending = {pool.submit(_worker_video, v): v for v in todo}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(ticks, frame_bar)
            for future in done:
                video = pending.pop(future)
                try:
                    outcomes[video.name] = future.result()
                except Exception as exc:  # a worker died (out of memory, crash) or could not start
                    outcomes[video.name] = VideoOutcome(video=video.name, status="failed", error=f"{type(exc).__name__}: {exc}")
                video_bar.update(1)
        _drain(ticks, frame_bar)


def _drain(ticks, bar) -> None:
    count = 0
    while True:
        try:
            count += ticks.get_nowait()
        except queue.Empty:
            break
        except (OSError, ValueError):
            break
    if count:
        bar.update(count)


def asdict_shallow(obj) -> dict:
    """Fields of a dataclass without copying them deeply (a SAM2Config stays itself)."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}
