"""The video predictor: prompts on any frame, propagation with the streaming memory.

Semantics follow the reference ``SAM2VideoPredictor`` (same calls, same outputs), with two
differences in how the work is done: objects tracked on the same frame with the same memory
layout go through memory attention, the decoder and the memory encoder as one batch, and
frames are decoded and encoded on demand (never the whole video in memory).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..image.postprocess import fill_holes
from ..modeling.prompt_encoder import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT
from ..modeling.sam2 import NO_OBJECT_LOGIT, FrameFeatures, HeadOutput, MemoryInput, PointerInput, SAM2Model
from ..modeling.sam2 import non_overlapping_logits
from .sources import FrameSource, open_frame_source
from .memory_bank import MemoryPolicy, MemorySelection, select_memories
from .state import FrameOutput, ObjectTrack, PointPrompt, VideoSession

FrameResult = tuple[int, list[int], torch.Tensor]  # (frame index, object ids, logits [N, 1, H, W])


@dataclass(frozen=True)
class VideoPredictorOptions:
    """Post-processing and memory options of the video predictor.

    fill_hole_area: fill background holes up to this area (in low-res mask pixels) in outputs;
    non_overlap_masks: make objects disjoint in the returned masks;
    clear_non_cond_mem_around_input: on a new prompt, drop the object's tracked memories within
    ``num_maskmem`` frames of it; add_all_frames_to_correct_as_cond: a prompt on an already
    tracked frame makes it a conditioning frame; feature_cache_size: frames whose image
    features are kept.
    """

    fill_hole_area: int = 0
    non_overlap_masks: bool = False
    clear_non_cond_mem_around_input: bool = False
    add_all_frames_to_correct_as_cond: bool = False
    feature_cache_size: int = 2

    def __post_init__(self) -> None:
        if self.fill_hole_area < 0:
            raise ValueError(f"fill_hole_area must be >= 0, got {self.fill_hole_area}")
        if self.feature_cache_size < 1:
            raise ValueError(f"feature_cache_size must be >= 1, got {self.feature_cache_size}")


class VideoPredictor:
    """Tracks objects through a video. The model is shared and stateless; sessions hold state."""

    def __init__(self, model: SAM2Model, options: VideoPredictorOptions | None = None) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a SAM2Model, got {type(model).__name__}")
        self.model = model
        self.options = options or VideoPredictorOptions()
        self.policy = MemoryPolicy.from_config(model.config)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ sessions
    @torch.inference_mode()
    def init_state(
        self,
        source,
        *,
        offload_state_to_cpu: bool = False,
        streaming: bool = False,
    ) -> VideoSession:
        """Open a video: a frame folder, a video file, an array/tensor/list of frames, an
        iterable of frames, or a :class:`FrameSource`. Frames are decoded when needed."""
        frames = source if isinstance(source, FrameSource) else open_frame_source(source, self.image_size)
        device = self.device
        session = VideoSession(
            frames=frames,
            video_height=frames.video_height,
            video_width=frames.video_width,
            device=device,
            storage_device=torch.device("cpu") if offload_state_to_cpu else device,
            streaming=streaming,
            feature_cache_size=self.options.feature_cache_size,
        )
        if frames.num_frames:
            self._features(session, 0)  # warm up like the reference (and check frame 0 decodes)
        return session

    def reset_state(self, session: VideoSession) -> None:
        """Forget every object and prompt (the frames and their cache stay)."""
        session.objects.clear()

    # ------------------------------------------------------------------ validation helpers
    def _check_frame(self, session: VideoSession, frame_idx, what: str = "frame_idx") -> int:
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)):
            raise TypeError(f"{what} must be an int, got {type(frame_idx).__name__}")
        frame_idx = int(frame_idx)
        n = session.num_frames
        if frame_idx < 0 or (n is not None and frame_idx >= n):
            valid = f"0..{n - 1}" if n is not None else ">= 0"
            raise IndexError(f"{what} {frame_idx} is outside the video (valid: {valid})")
        if n is None and not session.frames.has_frame(frame_idx):
            raise IndexError(f"{what} {frame_idx} is not available from this live source")
        return frame_idx

    @staticmethod
    def _check_obj_id(obj_id) -> int:
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)):
            raise TypeError(f"obj_id must be an int, got {type(obj_id).__name__}")
        return int(obj_id)

    def _object(self, session: VideoSession, obj_id: int) -> ObjectTrack:
        track = session.objects.get(obj_id)
        if track is None:
            track = ObjectTrack(obj_id=obj_id)
            session.objects[obj_id] = track
        return track

    # ------------------------------------------------------------------ features
    def _features(self, session: VideoSession, frame_idx: int) -> FrameFeatures:
        """Image features of one frame [1, ...], computed once and cached for recent frames."""
        cache = session.features
        feats = cache.get(frame_idx)
        if feats is not None:
            cache.move_to_end(frame_idx)
            return feats
        image = session.frames.get(frame_idx).to(session.device).unsqueeze(0)
        feats = self.model.encode_images(image)
        cache[frame_idx] = feats
        while len(cache) > session.feature_cache_size:
            cache.popitem(last=False)
        return feats

    # ------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_new_points_or_box(
        self,
        session: VideoSession,
        frame_idx: int,
        obj_id: int,
        points=None,
        labels=None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box=None,
    ) -> FrameResult:
        """Clicks and/or a box for one object on one frame; returns every object's mask there.

        points [N, 2] (x, y) and labels [N] (1 foreground, 0 background); box [4] (x0, y0, x1, y1).
        Coordinates are video pixels, or in [0, 1] with ``normalize_coords=False``.
        """
        frame_idx = self._check_frame(session, frame_idx)
        obj_id = self._check_obj_id(obj_id)
        coords, point_labels = self._prompt_tensors(session, points, labels, box, clear_old_points, normalize_coords)
        track = self._object(session, obj_id)
        old = track.points.get(frame_idx) if not clear_old_points else None
        if old is not None:
            coords = torch.cat([old.coords, coords], dim=1)
            point_labels = torch.cat([old.labels, point_labels], dim=1)
        prompt = PointPrompt(coords=coords.to(session.device), labels=point_labels.to(session.device))
        track.points[frame_idx] = prompt
        track.masks.pop(frame_idx, None)

        is_init = frame_idx not in track.directions
        reverse = False if is_init else track.directions[frame_idx]
        is_cond = is_init or self.options.add_all_frames_to_correct_as_cond
        prev = track.output_at(frame_idx, prefer_cond_pending=is_cond)
        prev_logits = None if prev is None else prev.pred_masks.to(session.device).clamp(-32.0, 32.0)
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, points=prompt, prev_logits=prev_logits)
        track.pending(is_cond)[frame_idx] = out
        return frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond)

    def _prompt_tensors(self, session, points, labels, box, clear_old_points, normalize_coords):
        if (points is None) != (labels is None):
            raise ValueError("points and labels must be given together")
        if points is None and box is None:
            raise ValueError("give points with labels, or a box")
        pts = self._float_array(points, "points", (-1, 2)) if points is not None else np.zeros((0, 2))
        if labels is not None:
            lab = self._float_array(labels, "labels", (-1,))
            if lab.shape[0] != pts.shape[0]:
                raise ValueError(f"{lab.shape[0]} labels for {pts.shape[0]} points")
            if not set(np.unique(lab).tolist()) <= {0.0, 1.0}:
                raise ValueError(f"labels must be 1 (foreground) or 0 (background), got {np.unique(lab).tolist()}")
        else:
            lab = np.zeros((0,))
        coords = torch.as_tensor(pts, dtype=torch.float32)[None]  # [1, N, 2]
        point_labels = torch.as_tensor(lab, dtype=torch.int32)[None]
        if box is not None:
            if not clear_old_points:
                raise ValueError("a box must come before any click: use clear_old_points=True with a box")
            b = self._float_array(box, "box", (4,))
            if b[2] < b[0] or b[3] < b[1]:
                raise ValueError(f"box must have x1 >= x0 and y1 >= y0, got {b.tolist()}")
            corners = torch.as_tensor(b, dtype=torch.float32).reshape(1, 2, 2)
            corner_labels = torch.tensor([[LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]], dtype=torch.int32)
            coords = torch.cat([corners, coords], dim=1)
            point_labels = torch.cat([corner_labels, point_labels], dim=1)
        if normalize_coords:
            coords = coords / torch.tensor([session.video_width, session.video_height])
        return coords * self.image_size, point_labels

    @staticmethod
    def _float_array(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric") from None
        if arr.ndim == len(shape) + 1 and arr.shape[0] == 1:
            arr = arr[0]  # a leading batch axis of 1 is accepted
        if arr.ndim != len(shape) or any(s != -1 and s != d for s, d in zip(shape, arr.shape)):
            raise ValueError(f"{name} must have shape {tuple('N' if s == -1 else s for s in shape)}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return arr

    @torch.inference_mode()
    def add_new_mask(self, session: VideoSession, frame_idx: int, obj_id: int, mask) -> FrameResult:
        """A mask prompt [H, W] (bool or 0/1) for one object on one frame."""
        frame_idx = self._check_frame(session, frame_idx)
        obj_id = self._check_obj_id(obj_id)
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
        if mask.dtype != np.bool_:
            if not np.isin(mask, (0, 1)).all():
                raise ValueError("mask must be boolean or contain only 0 and 1")
        full = torch.as_tensor(mask.astype(bool))[None, None].float().to(session.device)
        s = self.image_size
        if full.shape[-2:] != (s, s):
            full = F.interpolate(full, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            full = (full >= 0.5).float()
        track = self._object(session, obj_id)
        track.masks[frame_idx] = full
        track.points.pop(frame_idx, None)
        is_init = frame_idx not in track.directions
        reverse = False if is_init else track.directions[frame_idx]
        is_cond = is_init or self.options.add_all_frames_to_correct_as_cond
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, mask=full)
        track.pending(is_cond)[frame_idx] = out
        return frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond)

    def _prompted_frame(
        self,
        session: VideoSession,
        track: ObjectTrack,
        frame_idx: int,
        is_init: bool,
        reverse: bool,
        *,
        points: PointPrompt | None = None,
        mask: torch.Tensor | None = None,
        prev_logits: torch.Tensor | None = None,
    ) -> FrameOutput:
        """Run the heads for one object on a prompted frame (its memory is encoded later)."""
        model = self.model
        feats = self._features(session, frame_idx)
        high_res = feats.high_res
        if mask is not None and model.config.use_mask_input_as_output_without_sam:
            heads = model.mask_as_output(feats.image_embed, high_res, mask)
        else:
            selection = None if is_init else self._selection(session, track, frame_idx, reverse)
            pix = self._condition(session, feats, [track], selection, is_init)
            mask_in = prev_logits if prev_logits is not None else mask
            num_points = 0 if points is None else points.labels.shape[1]
            heads = model.forward_sam_heads(
                pix,
                None if points is None else points.coords,
                None if points is None else points.labels,
                mask_in,
                high_res,
                multimask_output=model.use_multimask(is_init, num_points),
            )
        return self._to_outputs(session, heads, maskmem=None)[0]

    # ------------------------------------------------------------------ memory conditioning
    def _selection(self, session: VideoSession, track: ObjectTrack, frame_idx: int, reverse: bool) -> MemorySelection:
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

    def _condition(
        self,
        session: VideoSession,
        feats: FrameFeatures,
        tracks: list[ObjectTrack],
        selection: MemorySelection | None,
        is_init: bool,
    ) -> torch.Tensor:
        """Memory-conditioned features [B, C, h, w] for a batch of objects sharing ``selection``."""
        b = len(tracks)
        image_embed = feats.image_embed.expand(b, -1, -1, -1)
        position = feats.position[-1].expand(b, -1, -1, -1)
        memories: list[MemoryInput] = []
        pointers: list[PointerInput] = []
        window = 1
        if selection is not None:
            device = session.device
            pos = session.maskmem_pos_enc.to(device).expand(b, -1, -1, -1)
            for t, slot in selection.memories:
                outs = [tr.cond[t] if slot == 0 else (tr.tracked.get(t) or tr.cond[t]) for tr in tracks]
                mem = torch.cat([o.maskmem_features for o in outs], dim=0).to(device)
                memories.append(MemoryInput(features=mem, pos_enc=pos, slot=slot))
            for t, offset, from_cond in selection.pointers:
                outs = [tr.cond[t] if from_cond else (tr.tracked.get(t) or tr.cond[t]) for tr in tracks]
                pointers.append(PointerInput(pointer=torch.cat([o.obj_ptr for o in outs], dim=0).to(device), offset=offset))
            window = selection.pointer_window
        return self.model.condition_on_memory(
            image_embed, position, memories, pointers, is_init_cond_frame=is_init, pointer_window=window
        )

    def _to_outputs(self, session: VideoSession, heads: HeadOutput, maskmem: torch.Tensor | None) -> list[FrameOutput]:
        """Split a batch of head outputs into per-object :class:`FrameOutput` (holes filled)."""
        low = heads.low_res_masks
        if self.options.fill_hole_area > 0:
            low = fill_holes(low, self.options.fill_hole_area, threshold=0.0, fill_value=0.1)
        store = session.storage_device
        outs = []
        for i in range(low.shape[0]):
            outs.append(
                FrameOutput(
                    pred_masks=low[i : i + 1].to(store),
                    obj_ptr=heads.obj_ptr[i : i + 1],
                    object_score_logits=heads.object_score_logits[i : i + 1],
                    maskmem_features=None if maskmem is None else maskmem[i : i + 1].to(store),
                )
            )
        return outs

    def _encode(
        self, session: VideoSession, frame_idx: int, high_res_masks: torch.Tensor, scores: torch.Tensor, from_points: bool
    ) -> torch.Tensor:
        """Memory features (bfloat16) [B, C_mem, h, w] for B objects' masks [B, 1, S, S] on a frame."""
        feats = self._features(session, frame_idx)
        b = high_res_masks.shape[0]
        mem, pos = self.model.encode_memory(
            feats.image_embed.expand(b, -1, -1, -1), high_res_masks, scores, is_mask_from_pts=from_points
        )
        if session.maskmem_pos_enc is None:
            session.maskmem_pos_enc = pos[0:1].clone().to(session.storage_device)
        return mem.to(torch.bfloat16)

    # ------------------------------------------------------------------ consolidation
    def _consolidated(self, session: VideoSession, frame_idx: int, is_cond: bool) -> torch.Tensor:
        """Every object's logits on a frame at video resolution [N, 1, H, W] (-1024 where absent)."""
        h, w = session.video_height, session.video_width
        out = torch.full((len(session.objects), 1, h, w), NO_OBJECT_LOGIT, dtype=torch.float32, device=session.device)
        for i, track in enumerate(session.objects.values()):
            o = track.output_at(frame_idx, prefer_cond_pending=is_cond)
            if o is None:
                continue
            out[i : i + 1] = F.interpolate(
                o.pred_masks.to(session.device).float(), size=(h, w), mode="bilinear", align_corners=False
            )
        return self._final(out)

    def _final(self, video_res: torch.Tensor) -> torch.Tensor:
        if self.options.non_overlap_masks:
            video_res = non_overlapping_logits(video_res)
        return video_res

    def _to_video_res(self, session: VideoSession, low_res: torch.Tensor) -> torch.Tensor:
        low_res = low_res.to(session.device).float()
        if low_res.shape[-2:] != (session.video_height, session.video_width):
            low_res = F.interpolate(low_res, size=(session.video_height, session.video_width), mode="bilinear", align_corners=False)
        return self._final(low_res)

    # ------------------------------------------------------------------ propagation
    def prepare_tracking(self, session: VideoSession) -> None:
        """Encode the memories of prompted frames and move them into the memory bank."""
        if not session.objects:
            raise RuntimeError("no object has a prompt yet: add points, a box or a mask first")
        # memories of pending outputs, batched per frame across objects
        todo: dict[int, list[FrameOutput]] = {}
        for track in session.objects.values():
            for pending in (track.pending_tracked, track.pending_cond):
                for t, out in pending.items():
                    if out.maskmem_features is None:
                        todo.setdefault(t, []).append(out)
        for t, outs in todo.items():
            low = torch.cat([o.pred_masks.to(session.device) for o in outs], dim=0).float()
            high = F.interpolate(low, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
            scores = torch.cat([o.object_score_logits for o in outs], dim=0)
            mem = self._encode(session, t, high, scores, from_points=True)
            for i, o in enumerate(outs):
                o.maskmem_features = mem[i : i + 1].to(session.storage_device)
        for track in session.objects.values():
            for is_cond in (False, True):
                pending = track.pending(is_cond)
                target = track.cond if is_cond else track.tracked
                for t, out in pending.items():
                    target[t] = out
                    if self.options.clear_non_cond_mem_around_input:
                        self._clear_tracked_around(track, t)
                pending.clear()
            if not track.cond:
                raise RuntimeError(f"object {track.obj_id} has no prompt: add points, a box or a mask for it first")
            for t in track.cond:
                track.tracked.pop(t, None)

    def _clear_tracked_around(self, track: ObjectTrack, frame_idx: int) -> None:
        reach = self.policy.memory_temporal_stride * self.policy.num_maskmem
        for t in range(frame_idx - reach, frame_idx + reach + 1):
            track.tracked.pop(t, None)

    @torch.inference_mode()
    def propagate_in_video(
        self,
        session: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        *,
        progress: bool = True,
    ) -> Iterator[FrameResult]:
        """Track every object from ``start_frame_idx`` (default: the first prompted frame),
        forward or in ``reverse``, for at most ``max_frame_num_to_track`` frames after the start.

        Yields (frame index, object ids, logits [N, 1, H, W] at video resolution) frame by frame.
        """
        self.prepare_tracking(session)
        n = session.num_frames
        if start_frame_idx is None:
            start_frame_idx = min(t for tr in session.objects.values() for t in tr.cond)
        start_frame_idx = self._check_frame(session, start_frame_idx, "start_frame_idx")
        if max_frame_num_to_track is not None and (
            isinstance(max_frame_num_to_track, bool) or int(max_frame_num_to_track) < 0
        ):
            raise ValueError(f"max_frame_num_to_track must be >= 0, got {max_frame_num_to_track}")
        limit = None if max_frame_num_to_track is None else int(max_frame_num_to_track)
        if reverse:
            end = 0 if limit is None else max(start_frame_idx - limit, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        elif n is None:
            # a source of unknown length (an iterable): forward until it runs out
            order = self._frames_until_exhausted(session, start_frame_idx, limit)
        else:
            end = n - 1 if limit is None else min(start_frame_idx + limit, n - 1)
            order = range(start_frame_idx, end + 1)
        for frame_idx in tqdm(order, desc="propagate", disable=not progress, leave=False):
            yield self.track_frame(session, frame_idx, reverse)

    @staticmethod
    def _frames_until_exhausted(session: VideoSession, start: int, limit: int | None) -> Iterator[int]:
        t = start
        while (limit is None or t <= start + int(limit)) and session.frames.has_frame(t):
            yield t
            t += 1

    def track_frame(self, session: VideoSession, frame_idx: int, reverse: bool) -> FrameResult:
        """Track every object on one frame (conditioning frames are reused as they are)."""
        tracks = list(session.objects.values())
        results: list[torch.Tensor | None] = [None] * len(tracks)
        groups: "OrderedDict[tuple, list[int]]" = OrderedDict()
        selections: dict[tuple, MemorySelection] = {}
        for i, track in enumerate(tracks):
            out = track.cond.get(frame_idx)
            if out is not None:
                results[i] = out.pred_masks
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, frame_idx)
            else:
                sel = self._selection(session, track, frame_idx, reverse)
                key = (sel.memories, sel.pointers, sel.pointer_window)
                groups.setdefault(key, []).append(i)
                selections[key] = sel
            track.directions[frame_idx] = reverse
        if groups:
            feats = self._features(session, frame_idx)
            for key, members in groups.items():
                batch = [tracks[i] for i in members]
                outs = self._track_batch(session, feats, frame_idx, batch, selections[key])
                for i, out in zip(members, outs):
                    tracks[i].tracked[frame_idx] = out
                    results[i] = out.pred_masks
        if session.streaming:
            self._forget_out_of_reach(session, frame_idx, reverse)
        low = torch.cat([r.to(session.device) for r in results], dim=0)
        return frame_idx, session.obj_ids, self._to_video_res(session, low)

    def _track_batch(
        self, session: VideoSession, feats: FrameFeatures, frame_idx: int, tracks: list[ObjectTrack], selection: MemorySelection
    ) -> list[FrameOutput]:
        model = self.model
        b = len(tracks)
        pix = self._condition(session, feats, tracks, selection, is_init=False)
        high_res = None if feats.high_res is None else [f.expand(b, -1, -1, -1) for f in feats.high_res]
        heads = model.forward_sam_heads(pix, None, None, None, high_res, multimask_output=model.use_multimask(False, 0))
        mem = self._encode(session, frame_idx, heads.high_res_masks, heads.object_score_logits, from_points=False)
        return self._to_outputs(session, heads, maskmem=mem)

    def _forget_out_of_reach(self, session: VideoSession, frame_idx: int, reverse: bool) -> None:
        """Streaming: drop tracked outputs no later frame can attend to."""
        horizon = self.policy.horizon()
        for track in session.objects.values():
            stale = [t for t in track.tracked if (t - frame_idx if reverse else frame_idx - t) > horizon]
            for t in stale:
                del track.tracked[t]
            old_dirs = [t for t in track.directions if (t - frame_idx if reverse else frame_idx - t) > horizon]
            for t in old_dirs:
                if t not in track.cond:
                    del track.directions[t]

    # ------------------------------------------------------------------ removing prompts and objects
    @torch.inference_mode()
    def clear_all_prompts_in_frame(
        self, session: VideoSession, frame_idx: int, obj_id: int, need_output: bool = True
    ) -> FrameResult | None:
        """Remove one object's prompts on a frame (its result there becomes a tracked one)."""
        frame_idx = self._check_frame(session, frame_idx)
        track = self._existing(session, obj_id)
        track.points.pop(frame_idx, None)
        track.masks.pop(frame_idx, None)
        track.pending_cond.pop(frame_idx, None)
        track.pending_tracked.pop(frame_idx, None)
        out = track.cond.pop(frame_idx, None)
        if out is not None:
            track.tracked[frame_idx] = out
            track.directions.pop(frame_idx, None)
        if not need_output:
            return None
        is_cond = any(frame_idx in tr.pending_cond for tr in session.objects.values())
        return frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond)

    def _existing(self, session: VideoSession, obj_id) -> ObjectTrack:
        obj_id = self._check_obj_id(obj_id)
        track = session.objects.get(obj_id)
        if track is None:
            raise KeyError(f"unknown object id {obj_id}; existing ids: {session.obj_ids}")
        return track

    @torch.inference_mode()
    def remove_object(
        self, session: VideoSession, obj_id: int, strict: bool = False, need_output: bool = True
    ) -> tuple[list[int], list[tuple[int, torch.Tensor]]]:
        """Remove an object everywhere. Returns the remaining ids and, with ``need_output``,
        the refreshed masks of the frames where it had prompts."""
        obj_id = self._check_obj_id(obj_id)
        if obj_id not in session.objects:
            if strict:
                raise KeyError(f"cannot remove object id {obj_id}: it does not exist (ids: {session.obj_ids})")
            return session.obj_ids, []
        if len(session.objects) == 1:
            self.reset_state(session)
            return session.obj_ids, []
        track = session.objects[obj_id]
        prompted = sorted(set(track.points) | set(track.masks))
        del session.objects[obj_id]
        updated = []
        if need_output:
            for t in prompted:
                is_cond = any(t in tr.pending_cond for tr in session.objects.values())
                updated.append((t, self._consolidated(session, t, is_cond)))
        return session.obj_ids, updated

    # ------------------------------------------------------------------ inspection
    def object_score_logits(self, session: VideoSession, obj_id: int, frame_idx: int) -> float | None:
        """An object's presence logit on a frame (None when it has no output there)."""
        track = self._existing(session, obj_id)
        out = track.output_at(frame_idx)
        return None if out is None else float(out.object_score_logits.reshape(-1)[0])
