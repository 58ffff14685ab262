"""The differentiable clip forward: a whole clip through the tracker in one call, for training.

Frames [T, 3, S, S] and prompts for N objects on some frames go in; every frame's outputs come
out, with gradients through the image encoder, memory attention, the memory encoder and the
object pointers. Memories are chosen by the same strategy code as inference
(:mod:`samstream.video.memory`). Prompted frames are processed first, without memory, then the
others in temporal order (or reverse), as SAM 2 trains. :func:`run_images` runs a batch of
single images (1-frame clips) together. ``SAM2Model.forward`` calls them, so the model can be
wrapped in ``DistributedDataParallel``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection, Mapping, Sequence

import torch

from ..modeling.sam2 import FrameFeatures, HeadOutput, MemoryInput, PointerInput, SAM2Model
from .memory import Candidates, DefaultMemory, MemoryPolicy, MemoryStrategy, make_strategy
from .state import MemoryFrames

# corrector(high_res_logits [N, 1, S, S]) -> (coords [N, 1, 2] in input pixels, labels [N, 1])
Corrector = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ClipPrompts:
    """Prompts for the N objects of a clip on one frame.

    point_coords [N, P, 2] in model-input pixels (0..S, x then y), point_labels [N, P] int
    (1 foreground, 0 background, 2 / 3 box corners placed first, -1 padding); mask [N, 1, S, S]
    (0 / 1) for mask prompts. Points, a mask, or both.
    """

    point_coords: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.point_coords is None) != (self.point_labels is None):
            raise ValueError("point_coords and point_labels must be given together")
        if self.point_coords is None and self.mask is None:
            raise ValueError("a prompt needs points (with labels) or a mask")
        if self.point_coords is not None:
            if self.point_coords.dim() != 3 or self.point_coords.shape[-1] != 2:
                raise ValueError(f"point_coords must be [N, P, 2], got {tuple(self.point_coords.shape)}")
            if tuple(self.point_labels.shape) != tuple(self.point_coords.shape[:2]):
                raise ValueError(
                    f"point_labels {tuple(self.point_labels.shape)} must match point_coords {tuple(self.point_coords.shape)}"
                )
        if self.mask is not None and (self.mask.dim() != 4 or self.mask.shape[1] != 1):
            raise ValueError(f"mask must be [N, 1, S, S], got {tuple(self.mask.shape)}")

    @property
    def num_objects(self) -> int:
        return int((self.point_coords if self.point_coords is not None else self.mask).shape[0])


@dataclass
class ClipStep:
    """One pass of the heads on a frame: the first, then one per corrective click.

    multimask_logits [N, M, S/4, S/4]; ious [N, M]; object_score_logits [N, 1];
    point_coords [N, P, 2] and point_labels [N, P]: the clicks this pass saw (None without).
    """

    multimask_logits: torch.Tensor
    ious: torch.Tensor
    object_score_logits: torch.Tensor
    point_coords: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None


@dataclass
class ClipFrameOutput:
    """A frame's result: its head passes, and the final chosen output.

    masks [N, 1, S/4, S/4] low-res logits of the chosen candidate after the last pass;
    high_res_masks [N, 1, S, S]; obj_ptr [N, C]; object_score_logits [N, 1];
    is_conditioning: the frame's memory was used as a conditioning frame.
    """

    frame_idx: int
    steps: list[ClipStep]
    masks: torch.Tensor
    high_res_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    is_conditioning: bool


@dataclass
class _Memory:
    """A processed frame in the clip's memory bank: features [N, C_mem, h, w], pointer [N, C]."""

    maskmem_features: torch.Tensor
    obj_ptr: torch.Tensor
    in_memory: bool = True


@dataclass
class _Bank:
    cond: dict[int, _Memory] = field(default_factory=dict)
    tracked: dict[int, _Memory] = field(default_factory=dict)
    pos_enc: torch.Tensor | None = None


def clip_strategy(model: SAM2Model, memory: str | MemoryStrategy) -> MemoryStrategy:
    """The strategy for a clip: ``"default"`` follows the model's train / eval mode (in training,
    memories at stride 1 and pointers of later conditioning frames, as SAM 2 trains)."""
    if isinstance(memory, str) and memory == "default":
        return DefaultMemory(MemoryPolicy.from_config(model.config, training=model.training))
    return make_strategy(memory, model.config)


def run_clip(
    model: SAM2Model,
    frames: torch.Tensor,
    prompts: Mapping[int, ClipPrompts],
    *,
    memory: str | MemoryStrategy = "default",
    corrector: Corrector | Mapping[int, Corrector] | None = None,
    correction_frames: Collection[int] = (),
    num_correction_clicks: int = 7,
    corrections_as_cond: bool = True,
    reverse: bool = False,
    memory_dtype: torch.dtype | None = None,
    features: FrameFeatures | None = None,
) -> list[ClipFrameOutput]:
    """Track N objects through a clip. Returns one :class:`ClipFrameOutput` per frame, in order.

    frames [T, 3, S, S] normalized; prompts: frame index -> :class:`ClipPrompts`. On
    ``correction_frames``, ``num_correction_clicks`` clicks are added one at a time from
    ``corrector`` (given the current prediction) and the heads re-run after each; those frames
    become conditioning frames with ``corrections_as_cond``. ``corrector`` is one function for
    every corrected frame, or one per frame (a mapping from frame index). ``memory_dtype``: the dtype memories
    are kept in (default: bfloat16 in eval mode, like inference; unchanged in training).
    ``features``: the frames' :meth:`SAM2Model.encode_images` output, when already computed (a
    frozen encoder's cached features); then the image encoder does not run.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [T, 3, S, S], got {tuple(frames.shape)}")
    t_len = frames.shape[0]
    if not prompts:
        raise ValueError("a clip needs a prompt on at least one frame")
    bad = sorted(t for t in prompts if not 0 <= t < t_len)
    if bad:
        raise ValueError(f"prompts on frames {bad} outside the clip of {t_len} frames")
    counts = {p.num_objects for p in prompts.values()}
    if len(counts) != 1:
        raise ValueError(f"every frame's prompts must cover the same objects, got counts {sorted(counts)}")
    if correction_frames and corrector is None:
        raise ValueError("correction_frames need a corrector")
    if isinstance(corrector, Mapping):
        missing = sorted(set(correction_frames) - set(corrector))
        if missing:
            raise ValueError(f"no corrector for correction frames {missing}")
    n = counts.pop()
    strategy = clip_strategy(model, memory)
    if memory_dtype is None:
        memory_dtype = frames.dtype if model.training else torch.bfloat16

    states = [strategy.new_object_state(i) for i in range(n)]
    feats = model.encode_images(frames) if features is None else features
    cond_frames = sorted(prompts, reverse=reverse)
    others = [t for t in (range(t_len - 1, -1, -1) if reverse else range(t_len)) if t not in prompts]
    bank = _Bank()
    outputs: dict[int, ClipFrameOutput] = {}
    corrections = set(correction_frames)
    order = cond_frames + others
    for t in order:
        frame = _frame_features(feats, t, n)
        is_init = t in prompts
        if is_init:
            pix = model.condition_on_memory(
                frame.image_embed, frame.position[-1], [], [], is_init_cond_frame=True, pointer_window=1
            )
        else:
            pix = _condition(model, strategy, frame, bank, t, reverse, t_len)
        prompt = prompts.get(t)
        correct = None
        if t in corrections:
            correct = corrector[t] if isinstance(corrector, Mapping) else corrector
        choose = None if is_init else (lambda heads, t=t: _strategy_choice(strategy, t, heads, states))
        heads, steps, coords = _frame_heads(
            model, frame, pix, prompt, is_init=is_init, choose=choose, corrector=correct, num_clicks=num_correction_clicks
        )
        high = heads.high_res_masks
        is_cond = is_init or (corrections_as_cond and t in corrections)
        if t != order[-1]:  # no later frame reads the last frame's memory (a 1-frame clip needs none)
            mem = model.encode_memory(frame.image_embed, high, heads.object_score_logits, is_mask_from_pts=coords is not None)
            if bank.pos_enc is None:
                bank.pos_enc = mem.pos_enc[0:1]
            entry = _Memory(mem.features.to(memory_dtype), heads.obj_ptr)
            (bank.cond if is_cond else bank.tracked)[t] = entry
        outputs[t] = ClipFrameOutput(
            frame_idx=t,
            steps=steps,
            masks=heads.low_res_masks,
            high_res_masks=high,
            obj_ptr=heads.obj_ptr,
            object_score_logits=heads.object_score_logits,
            is_conditioning=is_cond,
        )
    return [outputs[t] for t in range(t_len)]


def run_images(
    model: SAM2Model,
    images: torch.Tensor,
    prompts: Sequence[ClipPrompts],
    *,
    corrector: Sequence[Corrector] | None = None,
    num_correction_clicks: int = 7,
    features: FrameFeatures | None = None,
) -> list[ClipFrameOutput]:
    """B single images in one pass: each one a 1-frame clip, their objects batched through the
    heads. The same outputs as :func:`run_clip` on each image alone, in one encoder pass and one
    decoder pass per click instead of B.

    images [B, 3, S, S] normalized; ``prompts[b]``: image b's prompts for its N_b objects. All
    images must be prompted alike (points with the same number per object, or masks), since
    their objects go through the prompt encoder together. ``corrector[b]``: image b's corrector
    (``num_correction_clicks`` clicks on every image), or None for no corrections.
    ``features``: the images' :meth:`SAM2Model.encode_images` output, when already computed.
    Returns one :class:`ClipFrameOutput` per image (frame_idx 0, a conditioning frame).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, S, S], got {tuple(images.shape)}")
    b_len = images.shape[0]
    if len(prompts) != b_len:
        raise ValueError(f"got {len(prompts)} prompts for {b_len} images")
    kinds = {_prompt_kind(p) for p in prompts}
    if len(kinds) != 1:
        raise ValueError(f"the images must be prompted alike to go through the heads together, got {sorted(kinds)}")
    if corrector is not None and len(corrector) != b_len:
        raise ValueError(f"got {len(corrector)} correctors for {b_len} images")
    counts = [p.num_objects for p in prompts]
    owner = torch.repeat_interleave(torch.arange(b_len, device=images.device), torch.tensor(counts, device=images.device))
    feats = model.encode_images(images) if features is None else features
    frame = FrameFeatures([f[owner] for f in feats.features], [p[owner] for p in feats.position])  # [sum N_b, ...]
    prompt = ClipPrompts(
        point_coords=_cat([p.point_coords for p in prompts]),
        point_labels=_cat([p.point_labels for p in prompts]),
        mask=_cat([p.mask for p in prompts]),
    )
    pix = model.condition_on_memory(frame.image_embed, frame.position[-1], [], [], is_init_cond_frame=True, pointer_window=1)
    correct = None
    if corrector is not None:

        def correct(high_res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            clicks = [c(part) for c, part in zip(corrector, high_res.split(counts))]
            return torch.cat([xy for xy, _ in clicks]), torch.cat([lab for _, lab in clicks])

    heads, steps, _ = _frame_heads(
        model, frame, pix, prompt, is_init=True, choose=None, corrector=correct, num_clicks=num_correction_clicks
    )
    outputs = []
    for part in _object_slices(counts):
        outputs.append(
            ClipFrameOutput(
                frame_idx=0,
                steps=[_step_slice(step, part) for step in steps],
                masks=heads.low_res_masks[part],
                high_res_masks=heads.high_res_masks[part],
                obj_ptr=heads.obj_ptr[part],
                object_score_logits=heads.object_score_logits[part],
                is_conditioning=True,
            )
        )
    return outputs


def _prompt_kind(prompt: ClipPrompts) -> str:
    """What must agree for prompts to be batched: points (and how many per object), a mask."""
    points = "no points" if prompt.point_labels is None else f"{prompt.point_labels.shape[1]} points"
    return f"{points}, {'a mask' if prompt.mask is not None else 'no mask'}"


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if parts[0] is None else torch.cat(parts)


def _object_slices(counts: Sequence[int]) -> list[slice]:
    """Each image's rows among the batched objects."""
    starts = [sum(counts[:i]) for i in range(len(counts))]
    return [slice(a, a + n) for a, n in zip(starts, counts)]


def _step_slice(step: ClipStep, rows: slice) -> ClipStep:
    """The rows ``rows`` (one image's objects) of a batched :class:`ClipStep`."""
    return ClipStep(
        step.multimask_logits[rows],
        step.ious[rows],
        step.object_score_logits[rows],
        None if step.point_coords is None else step.point_coords[rows],
        None if step.point_labels is None else step.point_labels[rows],
    )


def _frame_heads(
    model: SAM2Model,
    frame: FrameFeatures,
    pix: torch.Tensor,
    prompt: ClipPrompts | None,
    *,
    is_init: bool,
    choose: Callable[[HeadOutput], HeadOutput] | None,
    corrector: Corrector | None,
    num_clicks: int,
) -> tuple[HeadOutput, list[ClipStep], torch.Tensor | None]:
    """The heads on one frame of N objects: the first pass on ``prompt`` (or none), the
    ``choose`` pick among candidates (tracked frames), then one pass per corrective click from
    ``corrector``. pix [N, C, h, w] (memory-conditioned). Returns the last pass, every pass as a
    :class:`ClipStep`, and the clicks [N, P, 2] the last pass saw (None without)."""
    coords = None if prompt is None else prompt.point_coords
    labels = None if prompt is None else prompt.point_labels
    if prompt is not None and prompt.mask is not None and model.config.use_mask_input_as_output_without_sam:
        heads = model.mask_as_output(frame.image_embed, frame.high_res, prompt.mask)
    else:
        num_points = 0 if labels is None else labels.shape[1]
        heads = model.forward_sam_heads(
            pix,
            coords,
            labels,
            None if prompt is None else prompt.mask,
            frame.high_res,
            multimask_output=model.use_multimask(is_init, num_points),
        )
        if choose is not None:
            heads = choose(heads)
    steps = [ClipStep(heads.low_res_multimasks, heads.ious, heads.object_score_logits, coords, labels)]
    if corrector is not None:
        for _ in range(num_clicks):
            new_xy, new_lab = corrector(heads.high_res_masks)
            coords = new_xy if coords is None else torch.cat([coords, new_xy.to(coords)], dim=1)
            labels = new_lab if labels is None else torch.cat([labels, new_lab.to(labels)], dim=1)
            heads = model.forward_sam_heads(
                pix,
                coords,
                labels,
                heads.low_res_masks,
                frame.high_res,
                multimask_output=model.use_multimask(is_init, labels.shape[1]),
            )
            steps.append(ClipStep(heads.low_res_multimasks, heads.ious, heads.object_score_logits, coords, labels))
    return heads, steps, coords


def _frame_features(feats: FrameFeatures, t: int, n: int) -> FrameFeatures:
    """Frame t's features, expanded to the N objects: [N, ...] per level."""
    return FrameFeatures(
        [f[t : t + 1].expand(n, -1, -1, -1) for f in feats.features],
        [p[t : t + 1].expand(n, -1, -1, -1) for p in feats.position],
    )


def _condition(
    model: SAM2Model, strategy: MemoryStrategy, frame: FrameFeatures, bank: _Bank, t: int, reverse: bool, t_len: int
) -> torch.Tensor:
    """Frame t's memory-conditioned features [N, C, h, w] (all objects share the selection)."""
    sel = strategy.select_memories(
        t,
        cond_frames=list(bank.cond),
        memory_frames=MemoryFrames(bank.tracked),
        reverse=reverse,
        num_frames=t_len,
        state=None,
    )
    n = frame.image_embed.shape[0]
    pos = bank.pos_enc.expand(n, -1, -1, -1)
    memories = []
    for frame_idx, slot in sel.memories:
        entry = bank.cond[frame_idx] if slot == 0 else (bank.tracked.get(frame_idx) or bank.cond[frame_idx])
        memories.append(MemoryInput(features=entry.maskmem_features, pos_enc=pos, slot=slot))
    pointers = []
    for frame_idx, offset, from_cond in sel.pointers:
        entry = bank.cond[frame_idx] if from_cond else (bank.tracked.get(frame_idx) or bank.cond[frame_idx])
        pointers.append(PointerInput(pointer=entry.obj_ptr, offset=offset))
    return model.condition_on_memory(
        frame.image_embed,
        frame.position[-1],
        memories,
        pointers,
        is_init_cond_frame=False,
        pointer_window=sel.pointer_window,
    )


def _strategy_choice(strategy: MemoryStrategy, t: int, heads: HeadOutput, states: list) -> HeadOutput:
    """The strategy's pick among each object's candidates on a tracked frame (one hypothesis;
    every output enters the clip's memory)."""
    m = heads.ious.shape[1]
    if m == 1:
        return heads
    choice = []
    for i in range(heads.ious.shape[0]):
        cands = Candidates(
            low_res_masks=heads.low_res_multimasks[i].detach(),
            ious=heads.ious[i].detach(),
            obj_ptrs=heads.candidate_ptrs[i].detach().expand(m, -1),
            object_score_logit=heads.object_score_logits[i, 0].detach(),
        )
        keeps = list(strategy.decide(t, [cands], states[i]))
        if len(keeps) != 1 or keeps[0].parent != 0:
            raise ValueError(f"the clip forward follows one hypothesis per object; strategy {strategy.name!r} kept {len(keeps)}")
        choice.append(keeps[0].candidate)
    return heads.with_choice(torch.tensor(choice, dtype=torch.long, device=heads.choice.device))
