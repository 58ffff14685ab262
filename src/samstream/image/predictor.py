"""The image predictor: embed an image once, then predict masks for many prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..modeling.sam2 import FrameFeatures, SAM2Model
from ..modeling.two_way_transformer import ImageContext
from .postprocess import fill_holes, remove_sprinkles
from ..prompts import CoordSpace
from .prompts import Prompt, PromptNames, PromptTensors, prepare_prompt
from .transforms import preprocess, to_rgb_array


@dataclass
class ImageEmbedding:
    """Features of B images: image_embed [B, C, h, w] (``no_mem_embed`` added when the model
    does so) and high_res [[B, C/8, 4h, 4w], [B, C/4, 2h, 2w]] (empty without high-res skips)."""

    image_embed: torch.Tensor
    high_res: list[torch.Tensor]


@dataclass
class MaskPrediction:
    """Masks for one prompt set (or B sets when the prompt was batched: a leading B axis).

    masks [C, H, W] bool at the image's size; logits [C, H, W]; scores [C] predicted IoU;
    low_res_logits [C, S/4, S/4] to feed back as a mask prompt. C = 3 with multimask output.
    """

    masks: np.ndarray
    logits: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray

    @property
    def best(self) -> int:
        """Index of the mask with the highest predicted IoU (single prompt set)."""
        return int(np.argmax(self.scores))


class ImagePredictor:
    """Holds the embedding of the current image(s); the model itself stays stateless."""

    def __init__(
        self,
        model: SAM2Model,
        *,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a SAM2Model, got {type(model).__name__}")
        self.model = model
        self.mask_threshold = float(mask_threshold)
        self.max_hole_area = float(max_hole_area)
        self.max_sprinkle_area = float(max_sprinkle_area)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        self.embedding: ImageEmbedding | None = None
        self.orig_hw: list[tuple[int, int]] = []
        self.is_batch = False
        # per image: the decoder's prompt-independent work, with the settings it was made under
        self._contexts: dict[int, tuple[tuple, ImageContext]] = {}

    @property
    def is_image_set(self) -> bool:
        return self.embedding is not None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ------------------------------------------------------------------ embedding
    @torch.inference_mode()
    def set_images(self, images: list, *, batch: bool = True) -> None:
        """Embed a list of images (numpy HWC RGB or PIL) in one batch."""
        if not isinstance(images, (list, tuple)) or len(images) == 0:
            raise ValueError("image_list must be a non-empty list of images")
        self.reset()
        arrays = [to_rgb_array(img, name=f"image {i}") for i, img in enumerate(images)]
        inputs = torch.stack([preprocess(a, self.image_size) for a in arrays]).to(self.device)
        feats = self.model.encode_images(inputs)
        embed = feats.image_embed
        if self.model.config.directly_add_no_mem_embed:
            embed = self.model.add_no_memory_embedding(embed)
        self.embedding = ImageEmbedding(image_embed=embed, high_res=list(feats.features[:-1]))
        self.orig_hw = [(a.shape[0], a.shape[1]) for a in arrays]
        self.is_batch = batch

    def set_image(self, image) -> None:
        """Embed one image (numpy HWC RGB uint8/uint16/float, or PIL)."""
        self.set_images([image], batch=False)

    @torch.inference_mode()
    def set_features(self, features: FrameFeatures, orig_hw: tuple[int, int]) -> None:
        """Use one image's features already computed by ``model.encode_images`` ([1, ...], e.g.
        a video frame's, cached by the video predictor) instead of encoding it again;
        ``orig_hw`` is that image's (height, width)."""
        if not isinstance(features, FrameFeatures):
            raise TypeError(f"features must be the FrameFeatures of model.encode_images, got {type(features).__name__}")
        if features.image_embed.shape[0] != 1:
            raise ValueError(f"features must be of one image, got a batch of {features.image_embed.shape[0]}")
        self.reset()
        embed = features.image_embed
        if self.model.config.directly_add_no_mem_embed:
            embed = self.model.add_no_memory_embedding(embed)
        self.embedding = ImageEmbedding(image_embed=embed, high_res=list(features.features[:-1]))
        self.orig_hw = [(int(orig_hw[0]), int(orig_hw[1]))]
        self.is_batch = False

    # ------------------------------------------------------------------ prediction
    def _require_image(self, image_index: int) -> None:
        if self.embedding is None:
            raise RuntimeError("no image is set: call set_image(...) (or set_image_batch) before predicting")
        if not 0 <= image_index < len(self.orig_hw):
            raise ValueError(f"image index {image_index} out of range for {len(self.orig_hw)} image(s)")

    def prepare(self, prompt: Prompt, image_index: int = 0, names: PromptNames = PromptNames()) -> PromptTensors:
        """Validate a prompt for image ``image_index`` into model tensors (errors use ``names``)."""
        self._require_image(image_index)
        return prepare_prompt(
            prompt, orig_hw=self.orig_hw[image_index], image_size=self.image_size, device=self.device, names=names
        )

    @torch.inference_mode()
    def predict_tensors(
        self,
        prompt: PromptTensors,
        *,
        multimask_output: bool = True,
        return_logits: bool = False,
        image_index: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode prompts already in the model's frame (see :class:`PromptTensors`).

        Returns masks [B, C, H, W] (logits, or bool unless ``return_logits``) at the image's size,
        IoU predictions [B, C] and low-res logits [B, C, S/4, S/4] clamped to [-32, 32].
        """
        self._require_image(image_index)
        emb = self.embedding
        model = self.model
        points = None if prompt.coords is None else (prompt.coords, prompt.labels)
        sparse, dense = model.sam_prompt_encoder(points=points, boxes=None, masks=prompt.mask_input)
        image_embed = emb.image_embed[image_index : image_index + 1]
        high_res = [f[image_index : image_index + 1] for f in emb.high_res] or None
        image_pe = model.sam_prompt_encoder.get_dense_pe()
        context = None
        if prompt.mask_input is None:  # the dense embedding is the same for every such prompt
            context = self._image_context(image_index, image_embed, image_pe, dense[:1])
        dec = model.sam_mask_decoder(
            image_embed,
            image_pe,
            sparse,
            dense,
            multimask_output=multimask_output,
            high_res_features=high_res,
            repeat_image=True,
            context=context,
        )
        low_res = dec.masks.float()
        masks = self.upscale(low_res, self.orig_hw[image_index])
        low_res = low_res.clamp(-32.0, 32.0)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, dec.iou.float(), low_res

    def _image_context(
        self, image_index: int, image_embed: torch.Tensor, image_pe: torch.Tensor, dense: torch.Tensor
    ) -> ImageContext:
        """The decoder's work that does not depend on the prompt, done once per image (and
        again if the autocast settings or the model change)."""
        device = image_embed.device.type
        autocast = torch.is_autocast_enabled(device)
        key = (
            autocast,
            torch.get_autocast_dtype(device) if autocast else None,
            image_embed.dtype,
            not self.model.training,
            tuple((p._version, p.data_ptr()) for p in self.model.sam_mask_decoder.transformer.layers[0].parameters()),
        )
        cached = self._contexts.get(image_index)
        if cached is not None and cached[0] == key:
            return cached[1]
        context = self.model.sam_mask_decoder.image_context(image_embed, image_pe, dense)
        self._contexts[image_index] = (key, context)
        return context

    def upscale(self, low_res: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
        """Hole/sprinkle removal on low-res logits [B, C, h, w], then bilinear upsampling to orig_hw."""
        if self.max_hole_area > 0 or self.max_sprinkle_area > 0:
            flat = low_res.flatten(0, 1).unsqueeze(1)
            flat = fill_holes(flat, self.max_hole_area, self.mask_threshold)
            flat = remove_sprinkles(flat, self.max_sprinkle_area, self.mask_threshold)
            low_res = flat.reshape(low_res.shape)
        return F.interpolate(low_res, size=orig_hw, mode="bilinear", align_corners=False)

    def predict(
        self,
        prompt: Prompt | None = None,
        *,
        points=None,
        labels=None,
        box=None,
        mask_input=None,
        coords: CoordSpace = "pixels",
        multimask_output: bool = True,
        image_index: int = 0,
    ) -> MaskPrediction:
        """Masks for a prompt (a :class:`Prompt`, or its fields as keywords)."""
        if prompt is None:
            prompt = Prompt(points=points, labels=labels, box=box, mask=mask_input, coords=coords)
        elif any(v is not None for v in (points, labels, box, mask_input)):
            raise ValueError("give either a Prompt or points/labels/box/mask_input, not both")
        tensors = self.prepare(prompt, image_index)
        logits, scores, low_res = self.predict_tensors(
            tensors, multimask_output=multimask_output, return_logits=True, image_index=image_index
        )
        logits_np = logits.cpu().numpy()
        batched = tensors.batch_size > 1 or (
            prompt.points is not None and np.ndim(prompt.points) == 3
        ) or (prompt.box is not None and np.ndim(prompt.box) == 2)
        out = MaskPrediction(
            masks=logits_np > self.mask_threshold,
            logits=logits_np,
            scores=scores.cpu().numpy(),
            low_res_logits=low_res.cpu().numpy(),
        )
        if not batched:
            out = MaskPrediction(out.masks[0], out.logits[0], out.scores[0], out.low_res_logits[0])
        return out
