"""Segment everything: prompt the model with a grid of points, keep the good, distinct masks.

For each crop of the image (the whole image, plus ``crop_n_layers`` layers of tiles):
embed the crop, decode the grid's points ``points_per_batch`` at a time, drop masks whose
predicted IoU or stability is too low and masks cut by the crop's border, then remove
duplicates with box NMS (within a crop by predicted IoU, across crops preferring
smaller crops). Same math and order of filters as the reference generator.

Masks that pass the filters are kept as COCO RLE (pycocotools, one call per batch), so
memory stays small whatever the number of proposals; they are decoded once, at the end,
only when ``output_mode="binary_mask"``.

Large images: the logits of one batch live at the crop's full resolution, so the number
of points decoded at once is lowered until a batch stays under
:data:`BATCH_MEMORY_BUDGET_BYTES` (same results, smaller batches). Images above
``max_image_megapixels`` (default 64) are refused with a ValueError: downscale them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np
import torch
from torchvision.ops import batched_nms, box_area
from tqdm.auto import tqdm

from ..io.rle import coco_rle_areas, decode_coco_rle, encode_coco_rle, masks_to_uncompressed_rle
from ..modeling.sam2 import SAM2Model
from .amg_utils import (
    batch_iterator,
    box_xyxy_to_xywh,
    build_layer_point_grids,
    generate_crop_boxes,
    is_box_near_crop_edge,
    masks_to_boxes_xyxy,
    remove_small_regions,
    stability_score,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from .predictor import ImagePredictor
from .prompts import PromptTensors
from ..prompts import to_model_coords
from .transforms import to_rgb_array

__all__ = [
    "OUTPUT_MODES",
    "BATCH_MEMORY_BUDGET_BYTES",
    "AutomaticMaskConfig",
    "GeneratedMask",
    "MaskProposals",
    "AutomaticMaskGenerator",
    "SAM2AutomaticMaskGenerator",
]

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")

#: Upper bound on the memory of one decoded batch (full-resolution logits and the
#: masks derived from them); ``points_per_batch`` is lowered for images that need it.
BATCH_MEMORY_BUDGET_BYTES = 4 << 30
_BYTES_PER_MASK_PIXEL = 10  # float32 logits + a filtered copy + bool masks


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class AutomaticMaskConfig:
    """Options of the automatic mask generator (names and defaults of the reference).

    points_per_side: grid points along each side of the image (points_per_side**2 in all);
        None when ``point_grids`` gives the points.
    points_per_batch: points decoded together (speed vs memory).
    pred_iou_thresh: keep masks whose predicted IoU is above this, in [0, 1] (0 = no filter).
    stability_score_thresh: keep masks whose stability score is at least this, in [0, 1]
        (0 = no filter). The score is the IoU of the masks cut at
        ``mask_threshold +- stability_score_offset``.
    mask_threshold: logit above which a pixel is in the mask.
    box_nms_thresh: box IoU above which the lower-scored of two masks of a crop is dropped.
    crop_n_layers: extra layers of crops; layer i tiles the image with (2**i)**2 crops.
    crop_nms_thresh: box IoU for removing duplicates between crops (smaller crops win).
    crop_overlap_ratio: overlap of neighbouring crops in layer 1, as a fraction of the
        image's short side (scaled down in deeper layers), in [0, 1).
    crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points per side.
    point_grids: explicit normalized (x, y) grids, one [K, 2] array per layer (layer 0 first).
    min_mask_region_area: as in the reference, the image predictor fills holes and removes
        islands of at most this many pixels in the low-resolution logits (before upsampling).
    output_mode: "binary_mask" (bool [H, W] arrays), "uncompressed_rle" or "coco_rle".
    use_m2m: refine each mask once with its own low-res logits as a mask prompt.
    multimask_output: three masks per point (else one).

    samstream additions:

    postprocess_small_regions: also clean each final mask at full resolution (holes and
        islands smaller than ``min_mask_region_area`` pixels, 8-connected), then rerun box NMS
        preferring masks that needed no change (the reference's ``postprocess_small_regions``,
        which its ``generate`` never calls).
    max_image_megapixels: refuse larger images with a ValueError.
    """

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    point_grids: tuple[np.ndarray, ...] | None = field(default=None, compare=False)
    min_mask_region_area: float = 0
    output_mode: str = "binary_mask"
    use_m2m: bool = False
    multimask_output: bool = True
    postprocess_small_regions: bool = False
    max_image_megapixels: float = 64.0

    def __post_init__(self) -> None:
        if (self.points_per_side is None) == (self.point_grids is None):
            raise ValueError(
                "give exactly one of points_per_side and point_grids "
                f"(got points_per_side={self.points_per_side!r}, point_grids={'None' if self.point_grids is None else 'set'})"
            )
        if self.points_per_side is not None and (not _is_int(self.points_per_side) or self.points_per_side < 1):
            raise ValueError(f"points_per_side must be an int >= 1 or None, got {self.points_per_side!r}")
        if not _is_int(self.points_per_batch) or self.points_per_batch < 1:
            raise ValueError(f"points_per_batch must be an int >= 1, got {self.points_per_batch!r}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        for name in ("stability_score_offset", "mask_threshold"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(float(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.stability_score_offset < 0:
            raise ValueError(f"stability_score_offset must be >= 0, got {self.stability_score_offset!r}")
        if not _is_int(self.crop_n_layers) or self.crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be an int >= 0, got {self.crop_n_layers!r}")
        if not _is_number(self.crop_overlap_ratio) or not 0.0 <= float(self.crop_overlap_ratio) < 1.0:
            raise ValueError(f"crop_overlap_ratio must be a number in [0, 1), got {self.crop_overlap_ratio!r}")
        factor = self.crop_n_points_downscale_factor
        if not _is_int(factor) or factor < 1:
            raise ValueError(f"crop_n_points_downscale_factor must be an int >= 1, got {factor!r}")
        area = self.min_mask_region_area
        if not _is_number(area) or not 0 <= float(area) < math.inf:
            raise ValueError(f"min_mask_region_area must be a finite number >= 0, got {area!r}")
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {', '.join(OUTPUT_MODES)}; got {self.output_mode!r}")
        for name in ("use_m2m", "multimask_output", "postprocess_small_regions"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        limit = self.max_image_megapixels
        if not _is_number(limit) or not float(limit) > 0:
            raise ValueError(f"max_image_megapixels must be a number > 0, got {limit!r}")
        if self.point_grids is not None:
            object.__setattr__(self, "point_grids", self._checked_grids(self.point_grids))
        else:
            for layer in range(self.crop_n_layers + 1):
                if int(self.points_per_side / factor**layer) < 1:
                    raise ValueError(
                        f"points_per_side={self.points_per_side} with crop_n_points_downscale_factor={factor} "
                        f"leaves no points in crop layer {layer} (crop_n_layers={self.crop_n_layers})"
                    )

    def _checked_grids(self, grids: Sequence[Any]) -> tuple[np.ndarray, ...]:
        if isinstance(grids, np.ndarray) or not isinstance(grids, Sequence):
            raise ValueError("point_grids must be a list of [K, 2] arrays, one per crop layer")
        if len(grids) < self.crop_n_layers + 1:
            raise ValueError(
                f"point_grids has {len(grids)} grid(s) but crop_n_layers={self.crop_n_layers} needs "
                f"{self.crop_n_layers + 1} (one per layer, the whole image first)"
            )
        checked = []
        for i, grid in enumerate(grids):
            arr = np.array(grid, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
                raise ValueError(f"point_grids[{i}] must have shape [K, 2] with K >= 1, got {arr.shape}")
            if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
                raise ValueError(f"point_grids[{i}] must hold normalized (x, y) in [0, 1]")
            arr.setflags(write=False)
            checked.append(arr)
        return tuple(checked)

    def layer_point_grids(self) -> list[np.ndarray]:
        """The normalized grid [K, 2] of every crop layer."""
        if self.point_grids is not None:
            return list(self.point_grids)
        return build_layer_point_grids(
            n_per_side=self.points_per_side,
            n_layers=self.crop_n_layers,
            scale_per_layer=self.crop_n_points_downscale_factor,
        )


@dataclass
class GeneratedMask:
    """One mask found in the image (the fields of the reference's record dicts).

    segmentation: bool [H, W] (output_mode "binary_mask"), or an RLE dict
        ``{"size": [H, W], "counts": [int, ...] | str}``.
    area: foreground pixels. bbox: [x, y, w, h] of the tight box (inclusive pixel indices).
    predicted_iou: the model's quality estimate. stability_score: see the config.
    point_coords: [[x, y]], the prompt point in image pixels.
    crop_box: [x, y, w, h] of the crop the mask came from.
    """

    segmentation: np.ndarray | dict[str, Any]
    area: int
    bbox: list[float]
    predicted_iou: float
    point_coords: list[list[float]]
    stability_score: float
    crop_box: list[float]

    def to_dict(self) -> dict[str, Any]:
        """The reference generator's record for this mask."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class MaskProposals:
    """Masks as batched tensors (N masks, all on CPU, masks compressed).

    rles: N COCO RLEs at the image's size; boxes int64 [N, 4] XYXY; areas int64 [N];
    iou float32 [N]; stability float32 [N]; points float32 [N, 2] (x, y);
    crop_boxes int64 [N, 4] XYXY. Boxes and points are in the frame of the crop while a
    crop is processed, and in the image's frame once it is done.
    """

    rles: list[dict[str, Any]]
    boxes: torch.Tensor
    areas: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor
    crop_boxes: torch.Tensor

    def __len__(self) -> int:
        return len(self.rles)

    @classmethod
    def empty(cls) -> MaskProposals:
        return cls(
            rles=[],
            boxes=torch.zeros(0, 4, dtype=torch.int64),
            areas=torch.zeros(0, dtype=torch.int64),
            iou=torch.zeros(0),
            stability=torch.zeros(0),
            points=torch.zeros(0, 2),
            crop_boxes=torch.zeros(0, 4, dtype=torch.int64),
        )

    @classmethod
    def cat(cls, parts: Sequence[MaskProposals]) -> MaskProposals:
        if not parts:
            return cls.empty()
        tensors = {
            name: torch.cat([getattr(p, name) for p in parts])
            for name in ("boxes", "areas", "iou", "stability", "points", "crop_boxes")
        }
        return cls(rles=[r for p in parts for r in p.rles], **tensors)

    def select(self, index: torch.Tensor) -> MaskProposals:
        """The masks at ``index`` (int64 [K]), in that order."""
        index = index.cpu()
        rles = self.rles
        return MaskProposals(
            rles=[rles[i] for i in index.tolist()],
            boxes=self.boxes[index],
            areas=self.areas[index],
            iou=self.iou[index],
            stability=self.stability[index],
            points=self.points[index],
            crop_boxes=self.crop_boxes[index],
        )


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices kept by class-agnostic box NMS, by decreasing score."""
    return batched_nms(boxes.float(), scores.float(), torch.zeros(len(boxes), dtype=torch.int64), threshold)


class AutomaticMaskGenerator:
    """Finds all masks in an image with a grid of point prompts.

    ``model_or_predictor``: a :class:`SAM2Model` (an :class:`ImagePredictor` is made for it,
    with ``max_hole_area`` and ``max_sprinkle_area`` set to ``min_mask_region_area`` as the
    reference does), or an :class:`ImagePredictor` used as it is (its own hole/sprinkle
    settings apply). The predictor's image is replaced by every call to :meth:`generate`.
    """

    def __init__(
        self,
        model_or_predictor: SAM2Model | ImagePredictor,
        config: AutomaticMaskConfig | None = None,
        *,
        progress: bool = False,
    ) -> None:
        config = AutomaticMaskConfig() if config is None else config
        if not isinstance(config, AutomaticMaskConfig):
            raise TypeError(f"config must be an AutomaticMaskConfig, got {type(config).__name__}")
        if isinstance(model_or_predictor, ImagePredictor):
            self.predictor = model_or_predictor
        elif isinstance(model_or_predictor, SAM2Model):
            self.predictor = ImagePredictor(
                model_or_predictor,
                max_hole_area=config.min_mask_region_area,
                max_sprinkle_area=config.min_mask_region_area,
            )
        else:
            raise TypeError(
                f"model_or_predictor must be a SAM2Model or an ImagePredictor, got {type(model_or_predictor).__name__}"
            )
        self.config = config
        self.progress = bool(progress)
        self.point_grids = config.layer_point_grids()

    # ------------------------------------------------------------------ public API
    def generate(self, image: Any) -> list[GeneratedMask]:
        """All masks of ``image`` (numpy HWC RGB or PIL), best first within each crop.

        An image where no mask passes the filters gives an empty list.
        """
        rgb = to_rgb_array(image)
        proposals = self.generate_proposals(rgb)
        return self._records(proposals, (rgb.shape[0], rgb.shape[1]))

    @torch.inference_mode()
    def generate_proposals(self, image: Any) -> MaskProposals:
        """The masks that survive filtering and NMS, as :class:`MaskProposals` (RLE-compressed)."""
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        self._check_size(height, width)
        cfg = self.config
        crop_boxes, layers = generate_crop_boxes(
            (height, width), n_layers=cfg.crop_n_layers, overlap_ratio=cfg.crop_overlap_ratio
        )
        plan = [(box, layer, self._batch_size(box, m2m=False)) for box, layer in zip(crop_boxes, layers)]
        steps = sum(math.ceil(len(self.point_grids[layer]) / batch) for _, layer, batch in plan)
        with tqdm(total=steps, desc="everything", unit="batch", disable=not self.progress, leave=False) as bar:
            parts = [self._process_crop(rgb, box, layer, batch, bar) for box, layer, batch in plan]
        found = MaskProposals.cat(parts)
        if len(crop_boxes) > 1 and len(found):
            # duplicates between crops: prefer masks from smaller crops
            keep = _nms(found.boxes, 1.0 / box_area(found.crop_boxes.float()), cfg.crop_nms_thresh)
            found = found.select(keep)
        if cfg.postprocess_small_regions and cfg.min_mask_region_area > 0 and len(found):
            found = self._clean_small_regions(found, (height, width))
        return found

    # ------------------------------------------------------------------ steps
    def _check_size(self, height: int, width: int) -> None:
        megapixels = height * width / 1e6
        limit = self.config.max_image_megapixels
        if megapixels > limit:
            per_point = 3 * height * width * 4 / 2**30
            raise ValueError(
                f"image of {width}x{height} pixels ({megapixels:.1f} megapixels) is above max_image_megapixels={limit:g}: "
                f"the three full-resolution mask logits of a single point already take {per_point:.2f} GiB; "
                "downscale the image or raise max_image_megapixels"
            )

    def _batch_size(self, crop_box: Sequence[int], *, m2m: bool) -> int:
        """points_per_batch, lowered so that one batch of full-resolution masks fits the budget."""
        x0, y0, x1, y1 = crop_box
        outputs = 1 if m2m or not self.config.multimask_output else 3
        per_point = outputs * (x1 - x0) * (y1 - y0) * _BYTES_PER_MASK_PIXEL
        return max(1, min(self.config.points_per_batch, BATCH_MEMORY_BUDGET_BYTES // per_point))

    def _process_crop(
        self, image: np.ndarray, crop_box: list[int], layer: int, batch: int, bar: tqdm
    ) -> MaskProposals:
        x0, y0, x1, y1 = crop_box
        crop = image[y0:y1, x0:x1]
        crop_hw = (crop.shape[0], crop.shape[1])
        self.predictor.set_image(crop)
        scale = np.array([crop_hw[1], crop_hw[0]], dtype=np.float64)  # (w, h) for (x, y)
        points = torch.as_tensor(self.point_grids[layer] * scale, dtype=torch.float32)  # [K, 2] crop pixels
        parts = []
        for (chunk,) in batch_iterator(batch, points):
            parts.append(self._process_batch(chunk, crop_box, crop_hw, image.shape[:2]))
            bar.update(1)
        self.predictor.reset()
        found = MaskProposals.cat(parts)
        if len(found):
            found = found.select(_nms(found.boxes, found.iou, self.config.box_nms_thresh))
        found.boxes = uncrop_boxes_xyxy(found.boxes, crop_box)
        found.points = uncrop_points(found.points, crop_box)
        found.crop_boxes = torch.tensor([crop_box], dtype=torch.int64).expand(len(found), 4).clone()
        return found

    def _decode(
        self, coords: torch.Tensor, mask_input: torch.Tensor | None, *, multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One point per prompt: coords [B, 2] model pixels -> logits [B*C, h, w], iou [B*C],
        low-res logits [B*C, S/4, S/4]."""
        labels = torch.ones(coords.shape[0], 1, dtype=torch.int32, device=coords.device)
        prompt = PromptTensors(coords=coords[:, None, :], labels=labels, mask_input=mask_input)
        logits, iou, low_res = self.predictor.predict_tensors(prompt, multimask_output=multimask, return_logits=True)
        return logits.flatten(0, 1), iou.flatten(0, 1), low_res.flatten(0, 1)

    def _process_batch(
        self,
        points: torch.Tensor,
        crop_box: list[int],
        crop_hw: tuple[int, int],
        image_hw: tuple[int, ...],
    ) -> MaskProposals:
        cfg = self.config
        device = self.predictor.device
        coords = to_model_coords(points.to(device), crop_hw, self.predictor.image_size, "pixels")
        logits, iou, low_res = self._decode(coords, None, multimask=cfg.multimask_output)  # [B*C, h, w], ...
        per_point = logits.shape[0] // points.shape[0]
        points = points.repeat_interleave(per_point, dim=0)  # [B*C, 2]
        if cfg.use_m2m:
            logits, iou = self._refine(points, crop_hw, low_res)

        # quality filters, in the reference's order: predicted IoU, then stability
        index = torch.arange(logits.shape[0], device=logits.device)
        if cfg.pred_iou_thresh > 0.0:
            index = index[iou > cfg.pred_iou_thresh]
            logits = logits[index]
        stability = stability_score(logits, mask_threshold=cfg.mask_threshold, offset=cfg.stability_score_offset)
        if cfg.stability_score_thresh > 0.0:
            passed = stability >= cfg.stability_score_thresh
            index, logits, stability = index[passed], logits[passed], stability[passed]

        masks = logits > cfg.mask_threshold  # [n, h, w]
        del logits
        boxes = masks_to_boxes_xyxy(masks)  # [n, 4] crop frame
        height, width = image_hw[0], image_hw[1]
        if list(crop_box) != [0, 0, width, height]:
            inside = ~is_box_near_crop_edge(boxes, crop_box=crop_box, image_box=[0, 0, width, height])
            if not bool(inside.all()):
                index, masks, boxes, stability = index[inside], masks[inside], boxes[inside], stability[inside]

        rles = encode_coco_rle(uncrop_masks(masks, crop_box, (height, width)))
        areas = torch.from_numpy(coco_rle_areas(rles))
        index = index.cpu()
        return MaskProposals(
            rles=rles,
            boxes=boxes.cpu(),
            areas=areas,
            iou=iou.cpu()[index],
            stability=stability.cpu(),
            points=points[index],
            crop_boxes=torch.zeros(len(rles), 4, dtype=torch.int64),
        )

    def _refine(
        self, points: torch.Tensor, crop_hw: tuple[int, int], low_res: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask-to-mask refinement: each point again, with its mask's low-res logits as prompt."""
        device = self.predictor.device
        coords = to_model_coords(points.to(device), crop_hw, self.predictor.image_size, "pixels")
        batch = self._batch_size([0, 0, crop_hw[1], crop_hw[0]], m2m=True)
        logits, ious = [], []
        for chunk, mask_input in batch_iterator(batch, coords, low_res):
            out_logits, out_iou, _ = self._decode(chunk, mask_input[:, None], multimask=False)
            logits.append(out_logits)
            ious.append(out_iou)
        return torch.cat(logits), torch.cat(ious)

    def _clean_small_regions(self, found: MaskProposals, image_hw: tuple[int, int]) -> MaskProposals:
        """Full-resolution hole filling and island removal, then NMS preferring unchanged masks."""
        area = self.config.min_mask_region_area
        masks = decode_coco_rle(found.rles, image_hw)  # bool [N, H, W]
        cleaned = np.empty((len(found), *image_hw), dtype=bool)
        unchanged = np.ones(len(found), dtype=bool)
        for i in range(len(found)):  # connected components are per mask (cv2, C speed)
            mask, filled = remove_small_regions(masks[i], area_thresh=area, mode="holes")
            mask, trimmed = remove_small_regions(mask, area_thresh=area, mode="islands")
            cleaned[i] = mask
            unchanged[i] = not (filled or trimmed)
        cleaned_t = torch.from_numpy(cleaned)
        boxes = masks_to_boxes_xyxy(cleaned_t)
        threshold = max(self.config.box_nms_thresh, self.config.crop_nms_thresh)
        keep = _nms(boxes, torch.from_numpy(unchanged).float(), threshold)
        result = found.select(keep)
        changed = [j for j, i in enumerate(keep.tolist()) if not unchanged[i]]
        if changed:
            source = keep[changed]
            new_rles = encode_coco_rle(cleaned_t[source])
            for j, rle in zip(changed, new_rles):
                result.rles[j] = rle
            result.boxes[changed] = boxes[source]
            result.areas[changed] = torch.from_numpy(coco_rle_areas(new_rles))
        return result

    def _records(self, found: MaskProposals, image_hw: tuple[int, int]) -> list[GeneratedMask]:
        if len(found) == 0:
            return []
        mode = self.config.output_mode
        if mode == "coco_rle":
            segmentations: Sequence[Any] = found.rles
        else:
            masks = decode_coco_rle(found.rles, image_hw)  # bool [N, H, W]
            segmentations = masks if mode == "binary_mask" else masks_to_uncompressed_rle(masks)
        boxes = box_xyxy_to_xywh(found.boxes).float().tolist()
        crop_boxes = box_xyxy_to_xywh(found.crop_boxes).float().tolist()
        points = found.points.float().tolist()
        return [
            GeneratedMask(
                segmentation=segmentation,
                area=int(area),
                bbox=box,
                predicted_iou=iou,
                point_coords=[point],
                stability_score=stability,
                crop_box=crop_box,
            )
            for segmentation, area, box, iou, point, stability, crop_box in zip(
                segmentations,
                found.areas.tolist(),
                boxes,
                found.iou.float().tolist(),
                points,
                found.stability.float().tolist(),
                crop_boxes,
            )
        ]


class SAM2AutomaticMaskGenerator:
    """The reference's ``SAM2AutomaticMaskGenerator``: same constructor and ``generate``,
    which returns the reference's list of record dicts (``segmentation``, ``area``, ``bbox``,
    ``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box``).

    Invalid options raise ValueError (the reference asserts). Option values are readable
    as attributes (``generator.points_per_batch``), and ``generator.predictor`` is the
    image predictor used.
    """

    def __init__(
        self,
        model: SAM2Model,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
    ) -> None:
        self.config = AutomaticMaskConfig(
            points_per_side=points_per_side,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            mask_threshold=mask_threshold,
            box_nms_thresh=box_nms_thresh,
            crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            point_grids=None if point_grids is None else tuple(point_grids),
            min_mask_region_area=min_mask_region_area,
            output_mode=output_mode,
            use_m2m=use_m2m,
            multimask_output=multimask_output,
        )
        self._generator = AutomaticMaskGenerator(model, self.config)
        self.predictor = self._generator.predictor
        self.point_grids = self._generator.point_grids

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__.get("config")
        if config is not None and name in {f.name for f in fields(config)}:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Masks of an HWC uint8 RGB image, as the reference's record dicts."""
        return [mask.to_dict() for mask in self._generator.generate(image)]
