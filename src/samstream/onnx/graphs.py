"""The exported graphs behind one object: the model's steps on ONNX Runtime, in numpy.

Shapes follow :mod:`samstream.modeling.sam2`: B objects, S the input size, h = S / 16,
C the decoder width, C_mem the memory width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from .manifest import CONSTANTS_NAME, Manifest, read_manifest
from .resize import resize

NO_OBJECT_LOGIT = -1024.0


@dataclass
class Features:
    """Image features of B frames: high_res [[B, C/8, 4h, 4w], [B, C/4, 2h, 2w]] (empty without
    high-res skips), image_embed [B, C, h, w] (without ``no_mem_embed``), image_pos [B, C, h, w]."""

    high_res: list[np.ndarray]
    image_embed: np.ndarray
    image_pos: np.ndarray

    def row(self, i: int) -> "Features":
        return Features([f[i : i + 1] for f in self.high_res], self.image_embed[i : i + 1], self.image_pos[i : i + 1])


class Heads(NamedTuple):
    """The decoder's output for B prompt sets with M candidates: masks [B, M, S/4, S/4] logits,
    iou [B, M], object_score_logits [B, 1], obj_ptr [B, M or 1, C]."""

    masks: np.ndarray
    iou: np.ndarray
    object_score_logits: np.ndarray
    obj_ptr: np.ndarray


def _session_options(num_threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    if num_threads is not None:
        opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1
    return opts


class OnnxModel:
    """The graphs of an export folder (see :mod:`samstream.export.onnx`) and their constants.

    ``providers``: ONNX Runtime execution providers (default: CPU); ``num_threads``: intra-op
    threads (default: ONNX Runtime's choice).
    """

    def __init__(
        self, export_dir: str | Path, *, providers: list[str] | None = None, num_threads: int | None = None
    ) -> None:
        self.export_dir = Path(export_dir)
        self.manifest: Manifest = read_manifest(self.export_dir)
        self.config = self.manifest.config
        opts = _session_options(num_threads)
        providers = providers or ["CPUExecutionProvider"]
        self._sessions = {
            role: ort.InferenceSession(str(self.export_dir / g.file), sess_options=opts, providers=providers)
            for role, g in self.manifest.graphs.items()
        }
        with np.load(self.export_dir / CONSTANTS_NAME) as data:
            self.constants = {k: data[k].astype(np.float32) for k in data.files}
        c = self.config
        self.image_size = int(c["image_size"])
        self.use_high_res = bool(c["use_high_res_features_in_sam"])
        self.use_obj_ptrs = bool(c["use_obj_ptrs_in_encoder"])

    def _run(self, role: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sessions[role].run(None, feeds)

    # ------------------------------------------------------------------ steps
    def encode_images(self, images: np.ndarray) -> Features:
        """Normalized images [B, 3, S, S] float32 -> :class:`Features`."""
        outs = self._run("image_encoder", {"image": np.ascontiguousarray(images, dtype=np.float32)})
        return Features(list(outs[:-2]), outs[-2], outs[-1])

    def add_no_memory_embedding(self, image_embed: np.ndarray) -> np.ndarray:
        """[B, C, h, w] + no_mem_embed: what a frame without memory feeds the decoder."""
        return image_embed + self.constants["no_mem_embed"].reshape(1, -1, 1, 1)

    def decode(
        self,
        image_embed: np.ndarray,
        high_res: list[np.ndarray],
        coords: np.ndarray | None,
        labels: np.ndarray | None,
        mask_input: np.ndarray | None,
        *,
        multimask: bool,
    ) -> Heads:
        """Prompt encoder + mask decoder for B prompt sets.

        image_embed [B, C, h, w] (memory-conditioned or with no_mem_embed); coords [B, N, 2] in
        input pixels with labels [B, N] (None: no clicks); mask_input [B, 1, S/4, S/4] or None.
        """
        b = image_embed.shape[0]
        s4 = self.image_size // 4
        if coords is None:
            coords = np.zeros((b, 1, 2), dtype=np.float32)
            labels = -np.ones((b, 1), dtype=np.int64)
        has_mask = np.zeros(b, dtype=np.float32) if mask_input is None else np.ones(b, dtype=np.float32)
        if mask_input is None:
            mask_input = np.zeros((b, 1, s4, s4), dtype=np.float32)
        if self.use_high_res:
            hr0, hr1 = high_res
        else:
            hr0 = hr1 = np.zeros((b, 1, 1, 1), dtype=np.float32)
        feeds = {
            "image_embed": np.ascontiguousarray(image_embed, dtype=np.float32),
            "high_res_0": np.ascontiguousarray(np.broadcast_to(hr0, (b,) + hr0.shape[1:]), dtype=np.float32),
            "high_res_1": np.ascontiguousarray(np.broadcast_to(hr1, (b,) + hr1.shape[1:]), dtype=np.float32),
            "point_coords": np.ascontiguousarray(coords, dtype=np.float32),
            "point_labels": np.ascontiguousarray(labels, dtype=np.int64),
            "mask_input": np.ascontiguousarray(np.broadcast_to(mask_input, (b, 1, s4, s4)), dtype=np.float32),
            "has_mask_input": has_mask,
        }
        return Heads(*self._run("decoder_multi" if multimask else "decoder_single", feeds))

    def mask_downsample(self, mask: np.ndarray) -> np.ndarray:
        """Binary masks [B, 1, S, S] -> the learned low-res mask prompt [B, 1, S/4, S/4]."""
        return self._run("mask_downsample", {"mask": np.ascontiguousarray(mask, dtype=np.float32)})[0]

    def condition_on_memory(
        self,
        image_embed: np.ndarray,
        image_pos: np.ndarray,
        memory: np.ndarray,
        memory_pos: np.ndarray,
        slots: np.ndarray,
        obj_ptrs: np.ndarray | None,
        ptr_positions: np.ndarray | None,
    ) -> np.ndarray:
        """Memory attention: features [B, C, h, w] with memories [B, F, C_mem, h, w] (slots [F])
        and pointers [B, P, C] at normalized temporal positions [P] -> [B, C, h, w]."""
        feeds = {
            "image_embed": np.ascontiguousarray(image_embed, dtype=np.float32),
            "image_pos": np.ascontiguousarray(image_pos, dtype=np.float32),
            "memory": np.ascontiguousarray(memory, dtype=np.float32),
            "memory_pos": np.ascontiguousarray(memory_pos, dtype=np.float32),
            "memory_slots": np.asarray(slots, dtype=np.int64),
        }
        if self.use_obj_ptrs:
            feeds["obj_ptrs"] = np.ascontiguousarray(obj_ptrs, dtype=np.float32)
            feeds["ptr_positions"] = np.asarray(ptr_positions, dtype=np.float32)
        return self._run("memory_attention", feeds)[0]

    def encode_memory(
        self, image_embed: np.ndarray, low_res_masks: np.ndarray, object_score_logits: np.ndarray, from_points: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Memories of B objects: raw features [B, C, h, w], chosen logits [B, 1, S/4, S/4],
        scores [B, 1] -> (memory [B, C_mem, h, w], memory_pos [B, C_mem, h, w])."""
        b = low_res_masks.shape[0]
        feeds = {
            "image_embed": np.ascontiguousarray(np.broadcast_to(image_embed, (b,) + image_embed.shape[1:]), dtype=np.float32),
            "low_res_masks": np.ascontiguousarray(low_res_masks, dtype=np.float32),
            "object_score_logits": np.ascontiguousarray(object_score_logits, dtype=np.float32).reshape(b, 1),
            "is_mask_from_pts": np.full(b, bool(from_points)),
        }
        mem, pos = self._run("memory_encoder", feeds)
        return mem, pos

    # ------------------------------------------------------------------ the video heads
    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        c = self.config
        return bool(
            c["multimask_output_in_sam"]
            and (is_init_cond_frame or c["multimask_output_for_tracking"])
            and c["multimask_min_pt_num"] <= num_points <= c["multimask_max_pt_num"]
        )

    def video_heads(self, heads: Heads) -> tuple[np.ndarray, np.ndarray]:
        """Masks with absent objects at -1024 [B, M, s, s] and the chosen candidate per object [B]."""
        masks = heads.masks
        if self.config["pred_obj_scores"]:
            present = heads.object_score_logits > 0  # [B, 1]
            masks = np.where(present[:, :, None, None], masks, np.float32(NO_OBJECT_LOGIT)).astype(np.float32)
        choice = heads.iou.argmax(axis=-1) if masks.shape[1] > 1 else np.zeros(masks.shape[0], dtype=np.int64)
        return masks, choice

    def mask_as_output(self, features: Features, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A binary mask prompt [B, 1, S, S] used as the output: (low-res logits [B, 1, S/4, S/4],
        object pointer [B, C], object score logits [B, 1])."""
        scale, bias = 20.0, -10.0
        mask = mask.astype(np.float32)
        high = mask * scale + bias
        s4 = self.image_size // 4
        low = resize(high, (s4, s4), antialias=True)
        b = mask.shape[0]
        present = (mask.reshape(b, -1) > 0).any(axis=1, keepdims=True).astype(np.float32)  # [B, 1]
        if self.use_obj_ptrs:
            heads = self.decode(
                features.image_embed, features.high_res, None, None, self.mask_downsample(mask), multimask=False
            )
            ptr = heads.obj_ptr[:, 0]
        else:
            ptr = np.zeros((b, int(self.config["image_encoder"]["neck"]["d_model"])), dtype=np.float32)
        if self.config["pred_obj_scores"]:
            if self.config["fixed_no_obj_ptr"]:
                ptr = present * ptr
            ptr = ptr + (1 - present) * self.constants["no_obj_ptr"][None]
        return low.astype(np.float32), ptr.astype(np.float32), (scale * present + bias).astype(np.float32)
