"""The video predictor: prompts on any frame, propagation with the streaming memory.

Semantics follow the reference ``SAM2VideoPredictor`` (same calls, same outputs), with two
differences in how the work is done: objects tracked on the same frame with the same memory
layout go through memory attention, the decoder and the memory encoder as one batch, and
frames are decoded and encoded on demand (never the whole video in memory).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..image.postprocess import fill_holes
from ..modeling.sam2 import NO_OBJECT_LOGIT, FrameFeatures, HeadOutput, MemoryInput, PointerInput, SAM2Model
from ..modeling.sam2 import non_overlapping_logits
from ..prompts import CoordSpace, check_binary_mask, prompt_points
from ..results import FrameResult, PromptResult
from .sources import FrameSource, open_frame_source
from .memory import Candidates, Keep, MemorySelection, make_strategy
from .memory.registry import MemorySpec
from .memory.boxes import mask_boxes
from .session_core import (
    RemovedObject,
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
from .state import FrameOutput, Hypothesis, MemoryFrames, ObjectTrack, PointPrompt, VideoSession


@dataclass(frozen=True)
class VideoPredictorOptions:
    """Post-processing and memory options of the video predictor.

    fill_hole_area: fill background holes up to this area (in low-res mask pixels) in outputs;
    non_overlap_masks: make objects disjoint in the returned masks;
    clear_non_cond_mem_around_input: on a new prompt, drop the object's tracked memories within
    ``num_maskmem`` frames of it; add_all_frames_to_correct_as_cond: a prompt on an already
    tracked frame makes it a conditioning frame; feature_cache_size: frames whose image
    features are kept; output_lag: fixed-lag output, frame t is given once frame t + output_lag
    has been tracked, from the object's best hypothesis then (for strategies that keep several,
    such as ``multipath``; 0 gives every frame as soon as it is tracked).
    """

    fill_hole_area: int = 0
    non_overlap_masks: bool = False
    clear_non_cond_mem_around_input: bool = False
    add_all_frames_to_correct_as_cond: bool = False
    feature_cache_size: int = 2
    output_lag: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.output_lag, bool) or not isinstance(self.output_lag, int) or self.output_lag < 0:
            raise ValueError(f"output_lag must be an integer >= 0, got {self.output_lag!r}")
        if self.fill_hole_area < 0:
            raise ValueError(f"fill_hole_area must be >= 0, got {self.fill_hole_area}")
        if self.feature_cache_size < 1:
            raise ValueError(f"feature_cache_size must be >= 1, got {self.feature_cache_size}")


class VideoPredictor:
    """Tracks objects through a video. The model is shared and stateless; sessions hold state.

    ``memory``: the memory strategy, by name (see :func:`samstream.video.memory.strategy_names`),
    as an object, or per object as a mapping ``{obj_id: name or object}`` (unlisted objects get
    ``"default"``, the reference behaviour).
    """

    def __init__(
        self,
        model: SAM2Model,
        options: VideoPredictorOptions | None = None,
        *,
        memory: MemorySpec = "default",
    ) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a SAM2Model, got {type(model).__name__}")
        self.model = model
        self.options = options or VideoPredictorOptions()
        self.memory = make_strategy(memory, model.config)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ sessions
    @torch.inference_mode()
    def open_session(
        self,
        source,
        *,
        offload_state_to_cpu: bool = False,
        streaming: bool = False,
    ) -> VideoSession:
        """Open a video: a frame folder, a video file, an array/tensor/list of frames, an
        iterable of frames, or a :class:`FrameSource`. Frames are decoded when needed.

        ``offload_state_to_cpu`` keeps per-frame outputs in CPU memory; ``streaming`` drops the
        outputs that no later frame can attend to (for sources of any length).
        """
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

    def reset_session(self, session: VideoSession) -> None:
        """Forget every object and prompt (the frames and their cache stay)."""
        session.objects.clear()
        if session.projection_cache is not None:
            session.projection_cache.clear()

    # ------------------------------------------------------------------ objects
    def _object(self, session: VideoSession, obj_id: int) -> ObjectTrack:
        track = session.objects.get(obj_id)
        if track is None:
            track = ObjectTrack(obj_id=obj_id)
            session.objects[obj_id] = track
        return track

    def _memory_state(self, track: ObjectTrack):
        if track.memory_state is None:
            track.memory_state = self.memory.new_object_state(track.obj_id)
        return track.memory_state

    # ------------------------------------------------------------------ features
    @torch.inference_mode()
    def frame_features(self, session: VideoSession, frame_idx: int) -> FrameFeatures:
        """A frame's image features [1, ...] (cached: a frame just tracked is not encoded again)."""
        return self._features(session, check_frame(session, frame_idx))

    def _features(self, session: VideoSession, frame_idx: int) -> FrameFeatures:
        """Image features of one frame [1, ...], computed once and cached for recent frames."""

        def encode(t: int) -> FrameFeatures:
            return self.model.encode_images(session.frames.get(t).to(session.device).unsqueeze(0))  # [1, 3, S, S]

        return cached_features(session, frame_idx, encode)

    # ------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_prompt(
        self,
        session: VideoSession,
        frame_idx: int,
        obj_id: int,
        *,
        points=None,
        labels=None,
        box=None,
        coords: CoordSpace = "pixels",
        clear_old: bool = True,
    ) -> PromptResult:
        """Clicks and/or a box for one object on one frame.

        points [N, 2] (x, y) and labels [N] (1 foreground, 0 background); box [4] (x0, y0, x1, y1);
        ``coords``: in ``"pixels"`` of the video or ``"normalized"`` to [0, 1]. ``clear_old=False``
        adds the clicks to the object's earlier clicks on this frame. Returns every object's
        masks on the frame (computed when asked for).
        """
        frame_idx, obj_id = check_target(session, frame_idx, obj_id)
        check_click_prompt(points, labels, box, clear_old=clear_old)
        coords_t, labels_t = prompt_points(
            points,
            labels,
            box,
            orig_hw=(session.video_height, session.video_width),
            image_size=self.image_size,
            coords=coords,
        )
        track = self._object(session, obj_id)
        old = track.points.get(frame_idx) if not clear_old else None
        if old is not None:
            coords_t = torch.cat([old.coords.to(coords_t.device), coords_t], dim=1)
            labels_t = torch.cat([old.labels.to(labels_t.device), labels_t], dim=1)
        prompt = PointPrompt(coords=coords_t.to(session.device), labels=labels_t.to(session.device))
        track.points[frame_idx] = prompt
        track.masks.pop(frame_idx, None)

        is_init, reverse, is_cond = prompt_frame(
            track, frame_idx, add_all_frames_to_correct_as_cond=self.options.add_all_frames_to_correct_as_cond
        )
        prev = track.output_at(frame_idx, prefer_cond_pending=is_cond)
        prev_logits = None if prev is None else prev.pred_masks.to(session.device).clamp(-32.0, 32.0)
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, points=prompt, prev_logits=prev_logits)
        track.pending(is_cond)[frame_idx] = out
        self.memory.on_prompt(frame_idx, self._memory_state(track))
        return self._prompt_result(session, frame_idx, is_cond)

    @torch.inference_mode()
    def add_mask(self, session: VideoSession, frame_idx: int, obj_id: int, mask) -> PromptResult:
        """A mask prompt [H, W] (bool or 0/1, at the video's size) for one object on one frame."""
        frame_idx, obj_id = check_target(session, frame_idx, obj_id)
        mask = check_binary_mask(mask)
        full = torch.as_tensor(mask)[None, None].float().to(session.device)
        s = self.image_size
        if full.shape[-2:] != (s, s):
            full = F.interpolate(full, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            full = (full >= 0.5).float()
        track = self._object(session, obj_id)
        track.masks[frame_idx] = full
        track.points.pop(frame_idx, None)
        is_init, reverse, is_cond = prompt_frame(
            track, frame_idx, add_all_frames_to_correct_as_cond=self.options.add_all_frames_to_correct_as_cond
        )
        out = self._prompted_frame(session, track, frame_idx, is_init, reverse, mask=full)
        track.pending(is_cond)[frame_idx] = out
        self.memory.on_prompt(frame_idx, self._memory_state(track))
        return self._prompt_result(session, frame_idx, is_cond)

    def _prompt_result(self, session: VideoSession, frame_idx: int, is_cond: bool) -> PromptResult:
        def compute() -> torch.Tensor:
            with torch.inference_mode():
                return self._consolidated(session, frame_idx, is_cond)

        return PromptResult(frame_idx, session.obj_ids, compute)

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
            hyp = track.hypotheses[0]
            selection = None if is_init else self._selection(session, track, hyp, frame_idx, reverse)
            pix = self._condition(session, feats, [(track, hyp)], selection, is_init)
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
        low = heads.low_res_masks
        return self._outputs(session, low, heads.obj_ptr, heads.object_score_logits, heads.ious)[0]

    # ------------------------------------------------------------------ memory conditioning
    def _selection(
        self, session: VideoSession, track: ObjectTrack, hyp: Hypothesis, frame_idx: int, reverse: bool
    ) -> MemorySelection:
        if not track.cond:
            raise RuntimeError(f"object {track.obj_id} has no prompted frame to track from")
        return self.memory.select_memories(
            frame_idx,
            cond_frames=list(track.cond),
            memory_frames=MemoryFrames(hyp.tracked),
            reverse=reverse,
            num_frames=session.num_frames,
            state=self._memory_state(track),
        )

    def _condition(
        self,
        session: VideoSession,
        feats: FrameFeatures,
        items: list[tuple[ObjectTrack, Hypothesis]],
        selection: MemorySelection | None,
        is_init: bool,
    ) -> torch.Tensor:
        """Memory-conditioned features [B, C, h, w] for a batch of (object, hypothesis) pairs
        sharing ``selection``."""
        b = len(items)
        image_embed = feats.image_embed.expand(b, -1, -1, -1)
        position = feats.position[-1].expand(b, -1, -1, -1)
        memories: list[MemoryInput] = []
        pointers: list[PointerInput] = []
        window = 1
        if selection is not None:
            device = session.device
            pos = session.maskmem_pos_enc.to(device).expand(b, -1, -1, -1)
            # slot 0 (and from_cond) is a conditioning frame, or a tracked frame a strategy attends
            # to like one (e.g. a distractor-resolving memory)
            for t, slot in selection.memories:
                outs = [(tr.cond.get(t) or hyp.tracked[t]) if slot == 0 else (hyp.tracked.get(t) or tr.cond[t]) for tr, hyp in items]
                rows = tuple(o.maskmem_features for o in outs)
                mem = torch.cat(rows, dim=0).to(device)
                memories.append(MemoryInput(features=mem, pos_enc=pos, slot=slot, rows=rows))
            for t, offset, from_cond in selection.pointers:
                outs = [(tr.cond.get(t) or hyp.tracked[t]) if from_cond else (hyp.tracked.get(t) or tr.cond[t]) for tr, hyp in items]
                pointers.append(PointerInput(pointer=torch.cat([o.obj_ptr for o in outs], dim=0).to(device), offset=offset))
            window = selection.pointer_window
        return self.model.condition_on_memory(
            image_embed,
            position,
            memories,
            pointers,
            is_init_cond_frame=is_init,
            pointer_window=window,
            cache=session.projection_cache,
        )

    def _outputs(
        self,
        session: VideoSession,
        low_res: torch.Tensor,
        obj_ptr: torch.Tensor,
        object_score_logits: torch.Tensor,
        ious: torch.Tensor,
        maskmem: torch.Tensor | None = None,
        in_memory: list[bool] | None = None,
    ) -> list[FrameOutput]:
        """Per-object :class:`FrameOutput` from B chosen masks [B, 1, s, s] (holes filled),
        pointers [B, C], object scores [B, 1], candidate IoUs [B, M] and memories [B, ...]."""
        if self.options.fill_hole_area > 0:
            low_res = fill_holes(low_res, self.options.fill_hole_area, threshold=0.0, fill_value=0.1)
        boxes = mask_boxes(low_res)
        store = session.storage_device
        outs = []
        for i in range(low_res.shape[0]):
            outs.append(
                FrameOutput(
                    pred_masks=low_res[i : i + 1].to(store),
                    obj_ptr=obj_ptr[i : i + 1],
                    object_score_logits=object_score_logits[i : i + 1],
                    ious=ious[i : i + 1],
                    box=boxes[i : i + 1],
                    maskmem_features=None if maskmem is None else maskmem[i : i + 1].to(store),
                    in_memory=True if in_memory is None else in_memory[i],
                )
            )
        return outs

    def _encode(
        self, session: VideoSession, frame_idx: int, high_res_masks: torch.Tensor, scores: torch.Tensor, from_points: bool
    ) -> torch.Tensor:
        """Memory features (bfloat16) [B, C_mem, h, w] for B objects' masks [B, 1, S, S] on a frame."""
        feats = self._features(session, frame_idx)
        b = high_res_masks.shape[0]
        mem = self.model.encode_memory(
            feats.image_embed.expand(b, -1, -1, -1), high_res_masks, scores, is_mask_from_pts=from_points
        )
        if session.maskmem_pos_enc is None:
            session.maskmem_pos_enc = mem.pos_enc[0:1].clone().to(session.storage_device)
        return mem.features.to(torch.bfloat16)

    # ------------------------------------------------------------------ consolidation
    @torch.inference_mode()
    def frame_masks(self, session: VideoSession, frame_idx: int) -> FrameResult:
        """Every object's newest masks on a frame (prompted, else tracked) at the video's size."""
        frame_idx = check_frame(session, frame_idx)
        is_cond = has_pending_cond(session, frame_idx)
        return FrameResult(frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond))

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
            for t, out in track.pending_cond.items():
                track.cond[t] = out
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, t)
            for t, out in track.pending_tracked.items():
                for hyp in track.hypotheses:  # a correction holds on every hypothesis
                    hyp.tracked[t] = out
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, t)
            track.pending_cond.clear()
            track.pending_tracked.clear()
            if not track.cond:
                raise RuntimeError(f"object {track.obj_id} has no prompt: add points, a box or a mask for it first")
            for t in track.cond:
                for hyp in track.hypotheses:
                    hyp.tracked.pop(t, None)

    def _clear_tracked_around(self, track: ObjectTrack, frame_idx: int) -> None:
        policy = getattr(self.memory, "policy", None)
        if policy is None:
            return
        reach = policy.memory_temporal_stride * policy.num_maskmem
        for hyp in track.hypotheses:
            for t in range(frame_idx - reach, frame_idx + reach + 1):
                hyp.tracked.pop(t, None)

    @torch.inference_mode()
    def propagate(
        self,
        session: VideoSession,
        *,
        start_frame_idx: int | None = None,
        max_frames: int | None = None,
        reverse: bool = False,
        progress: bool = True,
    ) -> Iterator[FrameResult]:
        """Track every object from ``start_frame_idx`` (default: the first prompted frame),
        forward or in ``reverse``, for at most ``max_frames`` frames after the start.

        Yields a :class:`FrameResult` (frame index, object ids, logits [N, 1, H, W] at the
        video's size) frame by frame; with ``options.output_lag`` N, frame t comes once frame
        t + N has been tracked (the last N frames at the end), from each object's best
        hypothesis at that time.
        """
        self.prepare_tracking(session)
        order = propagation_order(session, start_frame_idx=start_frame_idx, max_frames=max_frames, reverse=reverse)
        frames = tqdm(order, desc="propagate", disable=not progress, leave=False)
        lag = self.options.output_lag
        if lag == 0:
            for frame_idx in frames:
                yield self.track_frame(session, frame_idx, reverse)
            return
        waiting: deque[int] = deque()
        for frame_idx in frames:
            self.track_frame(session, frame_idx, reverse)
            waiting.append(frame_idx)
            if len(waiting) > lag:
                yield self.settled_result(session, waiting.popleft())
        while waiting:
            yield self.settled_result(session, waiting.popleft())

    def settled_result(self, session: VideoSession, frame_idx: int) -> FrameResult:
        """Every object's output on an already tracked frame, from its best hypothesis now (its
        prompt where it has one) at the video's size: the fixed-lag output. No frame is decoded."""
        return FrameResult(frame_idx, session.obj_ids, self._consolidated(session, frame_idx, is_cond=False))

    def track_frame(self, session: VideoSession, frame_idx: int, reverse: bool) -> FrameResult:
        """Track every object on one frame (conditioning frames are reused as they are).

        Every hypothesis of every object attends to the memories its strategy selects;
        (object, hypothesis) pairs with equal selections run as one batch; the strategy then
        decides per object which candidates become the output and the hypotheses kept.
        """
        if session.projection_cache is not None:
            session.projection_cache.advance()
        tracks = list(session.objects.values())
        results: list[torch.Tensor | None] = [None] * len(tracks)
        groups: "OrderedDict[MemorySelection, list[tuple[int, int]]]" = OrderedDict()
        for i, track in enumerate(tracks):
            out = track.cond.get(frame_idx)
            if out is not None:
                results[i] = out.pred_masks
                if self.options.clear_non_cond_mem_around_input:
                    self._clear_tracked_around(track, frame_idx)
            else:
                for h, hyp in enumerate(track.hypotheses):
                    sel = self._selection(session, track, hyp, frame_idx, reverse)
                    groups.setdefault(sel, []).append((i, h))
            track.directions[frame_idx] = reverse
        if groups:
            feats = self._features(session, frame_idx)
            proposals: dict[tuple[int, int], tuple[HeadOutput, int]] = {}
            for sel, members in groups.items():
                heads = self._propose(session, feats, [(tracks[i], tracks[i].hypotheses[h]) for i, h in members], sel)
                for row, key in enumerate(members):
                    proposals[key] = (heads, row)
            tracked = sorted({i for i, _ in proposals})
            for i, low in zip(tracked, self._decide(session, frame_idx, [tracks[i] for i in tracked], proposals, tracked)):
                results[i] = low
        if session.streaming:
            self._forget_out_of_reach(session, frame_idx, reverse)
        low = torch.cat([r.to(session.device) for r in results], dim=0)
        return FrameResult(frame_idx, session.obj_ids, self._to_video_res(session, low))

    def _propose(
        self,
        session: VideoSession,
        feats: FrameFeatures,
        items: list[tuple[ObjectTrack, Hypothesis]],
        selection: MemorySelection,
    ) -> HeadOutput:
        """The heads' candidates for a batch of (object, hypothesis) pairs sharing a selection."""
        model = self.model
        b = len(items)
        pix = self._condition(session, feats, items, selection, is_init=False)
        high_res = None if feats.high_res is None else [f.expand(b, -1, -1, -1) for f in feats.high_res]
        return model.forward_sam_heads(pix, None, None, None, high_res, multimask_output=model.use_multimask(False, 0))

    def _decide(
        self,
        session: VideoSession,
        frame_idx: int,
        tracks: list[ObjectTrack],
        proposals: dict[tuple[int, int], tuple[HeadOutput, int]],
        indices: list[int],
    ) -> list[torch.Tensor]:
        """Let the strategy pick each object's output and hypotheses, encode the memories of the
        kept outputs in one batch, and store them. Returns each object's output mask [1, 1, s, s]."""
        chosen: list[tuple[int, Keep, HeadOutput, int]] = []  # (object position, keep, heads, row)
        for pos, (track, i) in enumerate(zip(tracks, indices)):
            rows = [proposals[(i, h)] for h in range(len(track.hypotheses))]
            cands = [
                Candidates(
                    low_res_masks=heads.low_res_multimasks[row],
                    ious=heads.ious[row],
                    obj_ptrs=heads.candidate_ptrs[row].expand(heads.ious.shape[1], -1),
                    object_score_logit=heads.object_score_logits[row, 0],
                    prior_score=hyp.score,
                )
                for (heads, row), hyp in zip(rows, track.hypotheses)
            ]
            keeps = list(self.memory.decide(frame_idx, cands, self._memory_state(track)))
            if not keeps:
                raise RuntimeError(f"memory strategy {self.memory.name!r} kept no hypothesis for object {track.obj_id}")
            for k in keeps:
                if not (0 <= k.parent < len(rows)) or not (0 <= k.candidate < cands[k.parent].num_candidates):
                    raise RuntimeError(f"memory strategy {self.memory.name!r} kept an invalid candidate {k}")
                heads, row = rows[k.parent]
                chosen.append((pos, k, heads, row))

        # the kept candidates, all objects together: masks [K, 1, s, s], pointers, scores
        low = torch.stack([heads.low_res_multimasks[row, k.candidate] for _, k, heads, row in chosen]).unsqueeze(1)
        ptrs = torch.stack(
            [heads.candidate_ptrs[row, k.candidate if heads.candidate_ptrs.shape[1] > 1 else 0] for _, k, heads, row in chosen]
        )
        scores = torch.stack([heads.object_score_logits[row] for _, k, heads, row in chosen])
        ious = torch.stack([heads.ious[row] for _, k, heads, row in chosen])
        admit = [k.in_memory for _, k, _, _ in chosen]
        maskmem = None
        if any(admit):
            idx = [j for j, a in enumerate(admit) if a]
            s = self.image_size
            high = F.interpolate(low[idx], size=(s, s), mode="bilinear", align_corners=False)
            mem = self._encode(session, frame_idx, high, scores[idx], from_points=False)
            maskmem = mem.new_zeros((len(chosen),) + mem.shape[1:])
            maskmem[idx] = mem
        outs = self._outputs(session, low, ptrs, scores, ious, maskmem, admit)
        for j, a in enumerate(admit):
            if not a:
                outs[j].maskmem_features = None
            outs[j].note = chosen[j][1].note

        # new hypotheses per object: a parent kept twice is copied before anything is added
        results: list[torch.Tensor] = []
        for pos, track in enumerate(tracks):
            mine = [(j, k) for j, (p, k, _, _) in enumerate(chosen) if p == pos]
            claimed: set[int] = set()
            new_hyps: list[Hypothesis] = []
            for _, k in mine:
                parent = track.hypotheses[k.parent]
                tracked = parent.tracked if k.parent not in claimed else dict(parent.tracked)
                claimed.add(k.parent)
                new_hyps.append(Hypothesis(tracked=tracked, score=k.score))
            for (j, _), hyp in zip(mine, new_hyps):
                hyp.tracked[frame_idx] = outs[j]
            track.hypotheses = new_hyps
            results.append(outs[mine[0][0]].pred_masks)
        return results

    def _forget_out_of_reach(self, session: VideoSession, frame_idx: int, reverse: bool) -> None:
        """Streaming: drop tracked outputs no later frame can attend to (nor the lagged output)."""
        horizon = max(self.memory.horizon(), self.options.output_lag)
        for track in session.objects.values():
            for hyp in track.hypotheses:
                stale = out_of_reach(hyp.tracked, frame_idx, reverse=reverse, horizon=horizon)
                if not stale:
                    continue
                keep = self.memory.retained_frames(
                    frame_idx, memory_frames=MemoryFrames(hyp.tracked), reverse=reverse, state=self._memory_state(track)
                )
                for t in stale:
                    if t not in keep:
                        del hyp.tracked[t]
            forget_directions(track, frame_idx, reverse=reverse, horizon=horizon)

    # ------------------------------------------------------------------ removing prompts and objects
    @torch.inference_mode()
    def clear_prompts(self, session: VideoSession, frame_idx: int, obj_id: int) -> PromptResult:
        """Remove one object's prompts on a frame (its result there becomes a tracked one)."""
        frame_idx = check_frame(session, frame_idx)
        track: ObjectTrack = existing_track(session, obj_id)
        out = drop_prompts(track, frame_idx)
        if out is not None:
            for hyp in track.hypotheses:
                hyp.tracked[frame_idx] = out
        return self._prompt_result(session, frame_idx, has_pending_cond(session, frame_idx))

    @torch.inference_mode()
    def remove_object(self, session: VideoSession, obj_id: int, *, strict: bool = False) -> RemovedObject:
        """Remove an object everywhere (``strict``: an unknown id is an error). The frames where
        it had prompts are returned: :meth:`frame_masks` gives their refreshed masks."""
        return remove_track(session, obj_id, strict=strict, reset=lambda: self.reset_session(session))

    # ------------------------------------------------------------------ inspection
    def object_score_logits(self, session: VideoSession, obj_id: int, frame_idx: int) -> float | None:
        """An object's presence logit on a frame (None when it has no output there); a prompt
        not yet tracked from counts (its output is the newest)."""
        track: ObjectTrack = existing_track(session, obj_id)
        out = track.output_at(frame_idx, prefer_cond_pending=True) or track.output_at(frame_idx, prefer_cond_pending=False)
        return None if out is None else float(out.object_score_logits.reshape(-1)[0])

