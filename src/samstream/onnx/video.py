"""The video predictor on ONNX Runtime: the tracking loop of
:class:`samstream.video.predictor.VideoPredictor` with the reference memory (the ``default``
strategy), in numpy.

Same calls and the same results (within float tolerance): prompts on any frame, propagation
forward or in reverse, objects on one frame batched through memory attention, the decoder and
the memory encoder, memories stored at bfloat16 precision. Which memories a frame attends to
comes from :mod:`samstream.memory_selection`, the rule the PyTorch tracker uses.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator, NamedTuple

import numpy as np

from ..memory_selection import MemoryPolicy, MemorySelection, select_memories
from ..prompt_checks import check_binary_mask, prompt_point_arrays
from ..video.session_core import (
    RemovedObject,
    SessionLookups,
    TrackLookups,
    cached_features,
    check_click_prompt,
    check_frame,
    check_target,
    drop_prompts,
    existing_track,
    forget_directions,
    has_pending_cond,
    out_of_reach,
    prompt_frame,
    propagation_order,
    remove_track,
)
from .frames import Frames, open_frames
from .graphs import NO_OBJECT_LOGIT, Features, OnnxModel
from .resize import resize, round_to_bfloat16


class FrameResult(NamedTuple):
    """Every object's mask on one frame: logits [N, 1, H, W] at the video's size, in the order
    of ``obj_ids`` (-1024 where an object is judged absent)."""

    frame_idx: int
    obj_ids: list[int]
    masks: np.ndarray

    def binary_masks(self) -> np.ndarray:
        """[N, H, W] bool."""
        return self.masks[:, 0] > 0


class PromptResult:
    """A prompt's result: every object's masks on the frame, computed when first asked for;
    unpacks like :class:`FrameResult`."""

    __slots__ = ("frame_idx", "obj_ids", "_compute", "_masks")

    def __init__(self, frame_idx: int, obj_ids: list[int], compute: Callable[[], np.ndarray]) -> None:
        self.frame_idx, self.obj_ids = frame_idx, obj_ids
        self._compute: Callable[[], np.ndarray] | None = compute
        self._masks: np.ndarray | None = None

    @property
    def masks(self) -> np.ndarray:
        if self._compute is not None:
            self._masks, self._compute = self._compute(), None
        return self._masks  # type: ignore[return-value]

    def result(self) -> FrameResult:
        return FrameResult(self.frame_idx, self.obj_ids, self.masks)

    def __iter__(self):
        return iter(self.result())

    def __getitem__(self, index):
        return self.result()[index]

    def __len__(self) -> int:
        return 3


@dataclass(frozen=True)
class OnnxVideoOptions:
    """The options of :class:`samstream.video.predictor.VideoPredictorOptions` the runtime has
    (hole filling needs connected components and is not available: ``fill_hole_area`` must be 0)."""

    fill_hole_area: int = 0
    non_overlap_masks: bool = False
    clear_non_cond_mem_around_input: bool = False
    add_all_frames_to_correct_as_cond: bool = False
    feature_cache_size: int = 2

    def __post_init__(self) -> None:
        if self.fill_hole_area != 0:
            raise ValueError(f"fill_hole_area must be 0 in the ONNX runtime (no hole filling), got {self.fill_hole_area}")
        if self.feature_cache_size < 1:
            raise ValueError(f"feature_cache_size must be >= 1, got {self.feature_cache_size}")


@dataclass
class FrameOutput:
    """One object's result on one frame: pred_masks [1, 1, S/4, S/4], obj_ptr [1, C],
    object_score_logits [1, 1], ious [1, M], memory [1, C_mem, h, w] (bfloat16 values) or None."""

    pred_masks: np.ndarray
    obj_ptr: np.ndarray
    object_score_logits: np.ndarray
    ious: np.ndarray
    memory: np.ndarray | None = None


@dataclass
class ObjectTrack(TrackLookups[FrameOutput]):
    """One object: prompts, conditioning and tracked outputs, pending prompt results, and the
    direction each processed frame was reached in (see :class:`samstream.video.state.ObjectTrack`)."""

    obj_id: int
    points: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    cond: dict[int, FrameOutput] = field(default_factory=dict)
    tracked: dict[int, FrameOutput] = field(default_factory=dict)
    pending_cond: dict[int, FrameOutput] = field(default_factory=dict)
    pending_tracked: dict[int, FrameOutput] = field(default_factory=dict)
    directions: dict[int, bool] = field(default_factory=dict)


@dataclass
class OnnxVideoSession(SessionLookups):
    """A video being segmented: frames, objects, cached image features, the memory position encoding."""

    frames: Frames
    video_height: int
    video_width: int
    streaming: bool = False
    feature_cache_size: int = 2
    objects: "OrderedDict[int, ObjectTrack]" = field(default_factory=OrderedDict)
    features: "OrderedDict[int, Features]" = field(default_factory=OrderedDict)
    maskmem_pos_enc: np.ndarray | None = None


class OnnxVideoPredictor:
    """Track objects through a video with an ONNX export (``export_dir`` or an :class:`OnnxModel`)."""

    def __init__(
        self,
        export_dir: str | Path | OnnxModel,
        options: OnnxVideoOptions | None = None,
        *,
        providers: list[str] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.model = export_dir if isinstance(export_dir, OnnxModel) else OnnxModel(
            export_dir, providers=providers, num_threads=num_threads
        )
        self.options = options or OnnxVideoOptions()
        self.policy = MemoryPolicy.from_config(SimpleNamespace(**self.model.config))

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ------------------------------------------------------------------ sessions
    def open_session(self, source, *, offload_state_to_cpu: bool = False, streaming: bool = False) -> OnnxVideoSession:
        """Open a frame folder, an array / list of frames or a :class:`Frames` source.
        ``offload_state_to_cpu`` is accepted for the same signature (everything is in CPU memory)."""
        frames = open_frames(source, self.image_size)
        session = OnnxVideoSession(
            frames=frames,
            video_height=frames.video_height,
            video_width=frames.video_width,
            streaming=streaming,
            feature_cache_size=self.options.feature_cache_size,
        )
        if frames.num_frames:
            self._features(session, 0)
        return session

    def reset_session(self, session: OnnxVideoSession) -> None:
        session.objects.clear()

    def _object(self, session: OnnxVideoSession, obj_id: int) -> ObjectTrack:
        if obj_id not in session.objects:
            session.objects[obj_id] = ObjectTrack(obj_id=obj_id)
        return session.objects[obj_id]

    def _features(self, session: OnnxVideoSession, frame_idx: int) -> Features:
        def encode(t: int) -> Features:
            return self.model.encode_images(session.frames.get(t)[None])  # [1, 3, S, S]

        return cached_features(session, frame_idx, encode)

    # ------------------------------------------------------------------ prompts
    def add_prompt(
        self,
        session: OnnxVideoSession,
        frame_idx: int,
        obj_id: int,
        *,
        points=None,
        labels=None,
        box=None,
        coords: str = "pixels",
        clear_old: bool = True,
    ) -> PromptResult:
        """Clicks [N, 2] with labels [N] and/or a box [4] for one object on one frame, in
        ``"pixels"`` of the video or ``"normalized"``; returns every object's masks there."""
        frame_idx, obj_id = check_target(session, frame_idx, obj_id)
        check_click_prompt(points, labels, box, clear_old=clear_old)
        xy, lab = prompt_point_arrays(
            points, labels, box, orig_hw=(session.video_height, session.video_width), image_size=self.image_size, coords=coords
        )
        track = self._object(session, obj_id)
        old = track.points.get(frame_idx) if not clear_old else None
        if old is not None:
            xy, lab = np.concatenate([old[0], xy], axis=1), np.concatenate([old[1], lab], axis=1)
        track.points[frame_idx] = (xy, lab)
        track.masks.pop(frame_idx, None)
        is_init, reverse, is_cond = prompt_frame(
            track, frame_idx, add_all_frames_to_correct_as_cond=self.options.add_all_frames_to_correct_as_cond
        )
        prev = track.output_at(frame_idx, prefer_cond_pending=is_cond)
        prev_logits = None if prev is None else np.clip(prev.pred_masks, -32.0, 32.0)
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, points=(xy, lab), prev_logits=prev_logits)
        track.pending(is_cond)[frame_idx] = out
        return self._prompt_result(session, frame_idx, is_cond)

    def add_mask(self, session: OnnxVideoSession, frame_idx: int, obj_id: int, mask) -> PromptResult:
        """A mask [H, W] (bool or 0/1 at the video's size) for one object on one frame."""
        frame_idx, obj_id = check_target(session, frame_idx, obj_id)
        full = check_binary_mask(mask).astype(np.float32)[None, None]
        s = self.image_size
        if full.shape[-2:] != (s, s):
            full = (resize(full, (s, s), antialias=True) >= 0.5).astype(np.float32)
        track = self._object(session, obj_id)
        track.masks[frame_idx] = full
        track.points.pop(frame_idx, None)
        is_init, reverse, is_cond = prompt_frame(
            track, frame_idx, add_all_frames_to_correct_as_cond=self.options.add_all_frames_to_correct_as_cond
        )
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, mask=full)
        track.pending(is_cond)[frame_idx] = out
        return self._prompt_result(session, frame_idx, is_cond)

    def _prompt_result(self, session: OnnxVideoSession, frame_idx: int, is_cond: bool) -> PromptResult:
        return PromptResult(frame_idx, session.obj_ids, lambda: self._consolidated(session, frame_idx, is_cond))

    def _prompted_frame(self, session, track, frame_idx, is_init, reverse, *, points=None, mask=None, prev_logits=None):
        model = self.model
        feats = self._features(session, frame_idx)
        if mask is not None and model.config["use_mask_input_as_output_without_sam"]:
            low, ptr, score = model.mask_as_output(feats, mask)
            return FrameOutput(low, ptr, score, np.ones((1, 1), dtype=np.float32))
        selection = None if is_init else self._selection(session, track, frame_idx, reverse)
        pix = self._condition(session, feats, [track], selection, is_init)
        mask_in = prev_logits if prev_logits is not None else mask
        s4 = self.image_size // 4
        if mask_in is not None and mask_in.shape[-2:] != (s4, s4):
            mask_in = resize(mask_in, (s4, s4), antialias=True)
        num_points = 0 if points is None else points[1].shape[1]
        heads = model.decode(
            pix,
            feats.high_res,
            None if points is None else points[0],
            None if points is None else points[1],
            mask_in,
            multimask=model.use_multimask(is_init, num_points),
        )
        masks, choice = model.video_heads(heads)
        c = int(choice[0])
        ptr = heads.obj_ptr[:, c if heads.obj_ptr.shape[1] > 1 else 0]
        return FrameOutput(masks[:, c : c + 1], ptr, heads.object_score_logits, heads.iou)

    # ------------------------------------------------------------------ memory
    def _selection(self, session, track: ObjectTrack, frame_idx: int, reverse: bool) -> MemorySelection:
        if not track.cond:
            raise RuntimeError(f"object {track.obj_id} has no prompted frame to track from")
        return select_memories(
            frame_idx,
            cond_frames=list(track.cond),
            non_cond_frames=track.tracked,
            reverse=reverse,
            num_frames=session.num_frames,
            policy=self.policy,
        )

    def _condition(self, session, feats: Features, tracks: list[ObjectTrack], selection, is_init: bool) -> np.ndarray:
        """Memory-conditioned features [B, C, h, w] for B objects sharing ``selection``."""
        b = len(tracks)
        embed = np.broadcast_to(feats.image_embed, (b,) + feats.image_embed.shape[1:])
        if is_init:
            return self.model.add_no_memory_embedding(embed)
        memories, slots = [], []
        for t, slot in selection.memories:
            outs = [tr.cond[t] if slot == 0 else (tr.tracked.get(t) or tr.cond[t]) for tr in tracks]
            memories.append(np.concatenate([o.memory for o in outs], axis=0))  # [B, C_mem, h, w]
            slots.append(slot)
        if not memories:
            raise ValueError("a frame that is not an initial conditioning frame needs at least one memory")
        memory = np.stack(memories, axis=1)  # [B, F, C_mem, h, w]
        memory_pos = np.broadcast_to(session.maskmem_pos_enc[:, None], memory.shape)
        ptrs, offsets = [], []
        for t, offset, from_cond in selection.pointers:
            outs = [tr.cond[t] if from_cond else (tr.tracked.get(t) or tr.cond[t]) for tr in tracks]
            ptrs.append(np.concatenate([o.obj_ptr for o in outs], axis=0))  # [B, C]
            offsets.append(offset)
        dim = feats.image_embed.shape[1]
        obj_ptrs = np.stack(ptrs, axis=1) if ptrs else np.zeros((b, 0, dim), dtype=np.float32)  # [B, P, C]
        positions = np.asarray(offsets, dtype=np.float32) / np.float32(selection.pointer_window - 1)
        return self.model.condition_on_memory(
            embed, np.broadcast_to(feats.image_pos, embed.shape), memory, memory_pos, np.asarray(slots), obj_ptrs, positions
        )

    def _encode(self, session, frame_idx: int, low_res: np.ndarray, scores: np.ndarray, from_points: bool) -> np.ndarray:
        """Memories [B, C_mem, h, w] (bfloat16 values) of B objects' chosen logits on a frame."""
        feats = self._features(session, frame_idx)
        mem, pos = self.model.encode_memory(feats.image_embed, low_res, scores, from_points)
        if session.maskmem_pos_enc is None:
            session.maskmem_pos_enc = pos[0:1].copy()
        return round_to_bfloat16(mem)

    # ------------------------------------------------------------------ consolidation
    def frame_masks(self, session: OnnxVideoSession, frame_idx: int) -> FrameResult:
        """Every object's newest masks on a frame at the video's size."""
        frame_idx = check_frame(session, frame_idx)
        is_cond = has_pending_cond(session, frame_idx)
        return FrameResult(frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond))

    def _consolidated(self, session, frame_idx: int, is_cond: bool) -> np.ndarray:
        h, w = session.video_height, session.video_width
        out = np.full((len(session.objects), 1, h, w), NO_OBJECT_LOGIT, dtype=np.float32)
        for i, track in enumerate(session.objects.values()):
            o = track.output_at(frame_idx, prefer_cond_pending=is_cond)
            if o is not None:
                out[i : i + 1] = resize(o.pred_masks, (h, w), antialias=False)
        return self._final(out)

    def _final(self, video_res: np.ndarray) -> np.ndarray:
        if self.options.non_overlap_masks and video_res.shape[0] > 1:
            winner = video_res.argmax(axis=0)[None]  # [1, 1, H, W]
            own = np.arange(video_res.shape[0])[:, None, None, None]
            video_res = np.where(winner == own, video_res, np.minimum(video_res, -10.0)).astype(np.float32)
        return video_res

    # ------------------------------------------------------------------ propagation
    def prepare_tracking(self, session: OnnxVideoSession) -> None:
        """Encode the memories of prompted frames and move them into the memory bank."""
        if not session.objects:
            raise RuntimeError("no object has a prompt yet: add points, a box or a mask first")
        todo: dict[int, list[FrameOutput]] = {}
        for track in session.objects.values():
            for pending in (track.pending_tracked, track.pending_cond):
                for t, out in pending.items():
                    if out.memory is None:
                        todo.setdefault(t, []).append(out)
        for t, outs in todo.items():
            low = np.concatenate([o.pred_masks for o in outs], axis=0)
            scores = np.concatenate([o.object_score_logits for o in outs], axis=0)
            mem = self._encode(session, t, low, scores, from_points=True)
            for i, o in enumerate(outs):
                o.memory = mem[i : i + 1]
        for track in session.objects.values():
            for t, out in track.pending_cond.items():
                track.cond[t] = out
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, t)
            for t, out in track.pending_tracked.items():
                track.tracked[t] = out
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, t)
            track.pending_cond.clear()
            track.pending_tracked.clear()
            if not track.cond:
                raise RuntimeError(f"object {track.obj_id} has no prompt: add points, a box or a mask for it first")
            for t in track.cond:
                track.tracked.pop(t, None)

    def _clear_tracked_around(self, track: ObjectTrack, frame_idx: int) -> None:
        reach = self.policy.memory_temporal_stride * self.policy.num_maskmem
        for t in range(frame_idx - reach, frame_idx + reach + 1):
            track.tracked.pop(t, None)

    def propagate(
        self,
        session: OnnxVideoSession,
        *,
        start_frame_idx: int | None = None,
        max_frames: int | None = None,
        reverse: bool = False,
        progress: bool = False,
    ) -> Iterator[FrameResult]:
        """Track every object from ``start_frame_idx`` (default: the first prompted frame),
        forward or in ``reverse``, for at most ``max_frames`` frames after the start."""
        self.prepare_tracking(session)
        order = propagation_order(session, start_frame_idx=start_frame_idx, max_frames=max_frames, reverse=reverse)
        if not reverse and session.num_frames is None:
            raise ValueError("propagate needs a source of known length; use OnnxStreamingTracker for live frames")
        for frame_idx in order:
            yield self.track_frame(session, frame_idx, reverse)

    def track_frame(self, session: OnnxVideoSession, frame_idx: int, reverse: bool) -> FrameResult:
        """Track every object on one frame; objects with equal memory selections form one batch."""
        tracks = list(session.objects.values())
        results: list[np.ndarray | None] = [None] * len(tracks)
        groups: "OrderedDict[MemorySelection, list[int]]" = OrderedDict()
        for i, track in enumerate(tracks):
            out = track.cond.get(frame_idx)
            if out is not None:
                results[i] = out.pred_masks
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, frame_idx)
            else:
                groups.setdefault(self._selection(session, track, frame_idx, reverse), []).append(i)
            track.directions[frame_idx] = reverse
        if groups:
            feats = self._features(session, frame_idx)
            chosen: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
            for sel, members in groups.items():
                pix = self._condition(session, feats, [tracks[i] for i in members], sel, is_init=False)
                heads = self.model.decode(pix, feats.high_res, None, None, None, multimask=self.model.use_multimask(False, 0))
                masks, choice = self.model.video_heads(heads)
                for row, i in enumerate(members):
                    c = int(choice[row])
                    ptr = heads.obj_ptr[row, c if heads.obj_ptr.shape[1] > 1 else 0]
                    chosen.append((i, masks[row, c][None, None], ptr[None], heads.object_score_logits[row : row + 1], heads.iou[row : row + 1]))
            chosen.sort(key=lambda item: item[0])
            low = np.concatenate([c[1] for c in chosen], axis=0)
            scores = np.concatenate([c[3] for c in chosen], axis=0)
            memory = self._encode(session, frame_idx, low, scores, from_points=False)
            for j, (i, low_i, ptr, score, iou) in enumerate(chosen):
                tracks[i].tracked[frame_idx] = FrameOutput(low_i, ptr, score, iou, memory[j : j + 1])
                results[i] = low_i
        if session.streaming:
            self._forget_out_of_reach(session, frame_idx, reverse)
        low = np.concatenate(results, axis=0)
        h, w = session.video_height, session.video_width
        video_res = low if low.shape[-2:] == (h, w) else resize(low, (h, w), antialias=False)
        return FrameResult(frame_idx, session.obj_ids, self._final(video_res))

    def _forget_out_of_reach(self, session: OnnxVideoSession, frame_idx: int, reverse: bool) -> None:
        horizon = self.policy.horizon()
        for track in session.objects.values():
            for t in out_of_reach(track.tracked, frame_idx, reverse=reverse, horizon=horizon):
                del track.tracked[t]
            forget_directions(track, frame_idx, reverse=reverse, horizon=horizon)

    # ------------------------------------------------------------------ removing prompts and objects
    def clear_prompts(self, session: OnnxVideoSession, frame_idx: int, obj_id: int) -> PromptResult:
        """Remove one object's prompts on a frame (its result there becomes a tracked one)."""
        frame_idx = check_frame(session, frame_idx)
        track: ObjectTrack = existing_track(session, obj_id)
        out = drop_prompts(track, frame_idx)
        if out is not None:
            track.tracked[frame_idx] = out
        return self._prompt_result(session, frame_idx, has_pending_cond(session, frame_idx))

    def remove_object(self, session: OnnxVideoSession, obj_id: int, *, strict: bool = False) -> RemovedObject:
        """Remove an object everywhere; returns the remaining ids and the frames it had prompts on."""
        return remove_track(session, obj_id, strict=strict, reset=lambda: self.reset_session(session))

    def object_score_logits(self, session: OnnxVideoSession, obj_id: int, frame_idx: int) -> float | None:
        """An object's presence logit on a frame (None when it has no output there)."""
        out = existing_track(session, obj_id).output_at(frame_idx)
        return None if out is None else float(out.object_score_logits.reshape(-1)[0])
