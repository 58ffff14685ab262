"""The image predictor on ONNX Runtime, with the arguments and returns of
:class:`samstream.compat.SAM2ImagePredictor` (the reference's), in numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..image.rgb import to_rgb_array
from ..prompt_checks import check_low_res_logits, per_image_prompts, prompt_point_arrays
from .graphs import Features, OnnxModel
from .resize import resize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess(rgb: np.ndarray, image_size: int) -> np.ndarray:
    """RGB [H, W, 3] -> normalized model input [3, S, S]: antialiased bilinear resize, then
    ImageNet normalization (the image predictor's recipe, :func:`samstream.image.transforms.preprocess`)."""
    unit = 255.0 if rgb.dtype == np.uint8 else 1.0
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.float32)
    resized = resize(chw, (image_size, image_size), antialias=True)
    scale = np.array([1.0 / (unit * s) for s in IMAGENET_STD], dtype=np.float32).reshape(3, 1, 1)
    shift = np.array([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], dtype=np.float32).reshape(3, 1, 1)
    return (shift + resized * scale).astype(np.float32)


REFERENCE_NAMES = ("point_coords", "point_labels", "box")


class OnnxImagePredictor:
    """Embed an image once with the exported image encoder, then decode many prompts.

    ``export_dir``: a folder written by ``samstream export onnx``; ``providers`` / ``num_threads``
    go to ONNX Runtime. Methods and returns are those of the reference ``SAM2ImagePredictor``.
    """

    def __init__(
        self,
        export_dir: str | Path | OnnxModel,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        *,
        providers: list[str] | None = None,
        num_threads: int | None = None,
    ) -> None:
        if max_hole_area > 0 or max_sprinkle_area > 0:
            raise ValueError("max_hole_area / max_sprinkle_area are not available in the ONNX runtime (use 0)")
        self.model = export_dir if isinstance(export_dir, OnnxModel) else OnnxModel(
            export_dir, providers=providers, num_threads=num_threads
        )
        self.mask_threshold = float(mask_threshold)
        self.reset_predictor()

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ------------------------------------------------------------------ state
    def reset_predictor(self) -> None:
        self._features_np: Features | None = None
        self._decoder_embed: np.ndarray | None = None
        self._orig_hw_list: list[tuple[int, int]] = []
        self._is_batch = False

    @property
    def _is_image_set(self) -> bool:
        return self._features_np is not None

    @property
    def _orig_hw(self) -> list[tuple[int, int]] | None:
        return list(self._orig_hw_list) or None

    @property
    def _features(self) -> dict | None:
        if self._features_np is None:
            return None
        return {"image_embed": self._decoder_embed, "high_res_feats": list(self._features_np.high_res)}

    def _set(self, images: list, batch: bool) -> None:
        self.reset_predictor()
        arrays = [to_rgb_array(img, name=f"image {i}") for i, img in enumerate(images)]
        inputs = np.stack([preprocess(a, self.image_size) for a in arrays])
        feats = self.model.encode_images(inputs)
        embed = feats.image_embed
        if self.model.config["directly_add_no_mem_embed"]:
            embed = self.model.add_no_memory_embedding(embed)
        self._features_np = feats
        self._decoder_embed = embed.astype(np.float32)
        self._orig_hw_list = [(a.shape[0], a.shape[1]) for a in arrays]
        self._is_batch = batch

    def set_image(self, image) -> None:
        """Embed one image (numpy HWC RGB or PIL)."""
        self._set([image], batch=False)

    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        """Embed a list of HWC RGB numpy images in one batch (for :meth:`predict_batch`)."""
        if not isinstance(image_list, list) or not image_list:
            raise ValueError("image_list must be a non-empty list of HWC RGB numpy arrays")
        for i, img in enumerate(image_list):
            if not isinstance(img, np.ndarray):
                raise ValueError(f"image_list[{i}] must be an np.ndarray in HWC RGB format, got {type(img).__name__}")
        self._set(image_list, batch=True)

    def get_image_embedding(self) -> np.ndarray:
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        return self._decoder_embed

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks (C, H, W) float32, IoU predictions (C,) and low-res logits (C, S/4, S/4); with
        batched prompts (B, N, 2) each gets a leading B axis."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        return self._predict_one(point_coords, point_labels, box, mask_input, multimask_output, return_logits, normalize_coords, 0)

    def predict_batch(
        self,
        point_coords_batch: list[np.ndarray] | None = None,
        point_labels_batch: list[np.ndarray] | None = None,
        box_batch: list[np.ndarray] | None = None,
        mask_input_batch: list[np.ndarray] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """One prediction per image set with :meth:`set_image_batch`: lists of masks, IoUs and low-res logits."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image_batch(...) before mask prediction.")
        if not self._is_batch:
            raise RuntimeError("predict_batch needs images set with set_image_batch(...)")
        prompts = per_image_prompts(
            len(self._orig_hw_list), point_coords_batch, point_labels_batch, box_batch, mask_input_batch
        )
        outs = [
            self._predict_one(*prompt, multimask_output, return_logits, normalize_coords, i)
            for i, prompt in enumerate(prompts)
        ]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    def _predict_one(self, points, labels, box, mask_input, multimask_output, return_logits, normalize_coords, index):
        if labels is not None and points is None:
            raise ValueError("point_labels given without point_coords")
        if points is not None and labels is None:
            raise ValueError("point_labels must be given with point_coords")
        orig_hw = self._orig_hw_list[index]
        pts = prompt_point_arrays(
            points,
            labels,
            box,
            orig_hw=orig_hw,
            image_size=self.image_size,
            coords="pixels" if normalize_coords else "normalized",
            names=REFERENCE_NAMES,
            encoder_labels=True,
        )
        coords, labs = (None, None) if pts is None else pts
        mask = None
        if mask_input is not None:
            mask = check_low_res_logits(mask_input, self.image_size // 4).astype(np.float32)
            if coords is not None and mask.shape[0] not in (1, coords.shape[0]):
                raise ValueError(f"{mask.shape[0]} mask inputs for {coords.shape[0]} prompt sets")
        if coords is None and mask is None:
            raise ValueError("empty prompt: give point_coords with point_labels, a box, or a mask_input")
        b = coords.shape[0] if coords is not None else mask.shape[0]
        feats = self._features_np.row(index)
        embed = np.broadcast_to(self._decoder_embed[index : index + 1], (b,) + self._decoder_embed.shape[1:])
        heads = self.model.decode(embed, feats.high_res, coords, labs, mask, multimask=bool(multimask_output))
        low_res = heads.masks.astype(np.float32)
        masks = resize(low_res, orig_hw, antialias=False)
        low_res = np.clip(low_res, -32.0, 32.0)
        if not return_logits:
            masks = (masks > self.mask_threshold).astype(np.float32)
        ious = heads.iou.astype(np.float32)

        def squeeze(a: np.ndarray) -> np.ndarray:
            return a[0] if a.shape[0] == 1 else a

        return squeeze(masks), squeeze(ious), squeeze(low_res)
