"""Drop-in names and signatures of the reference ``sam2`` package, over samstream's engine.

Code written as::

    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

can use ``from samstream.compat import build_sam2, SAM2ImagePredictor`` unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .accel.compile import VIDEO_PARTS, compile_model
from .build import build_model
from .image.automatic import SAM2AutomaticMaskGenerator
from .image.predictor import ImagePredictor
from .image.prompts import REFERENCE_NAMES, Prompt
from .prompts import per_image_prompts, to_model_coords
from .modeling.sam2 import SAM2Model
from .video.predictor import VideoPredictor, VideoPredictorOptions
from .video.state import VideoSession

__all__ = [
    "build_sam2",
    "build_sam2_video_predictor",
    "SAM2ImagePredictor",
    "SAM2VideoPredictor",
    "SAM2AutomaticMaskGenerator",
]


def build_sam2(
    config_file: str | Path,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: list[str] | None = None,
    apply_postprocessing: bool = True,
) -> SAM2Model:
    """Build the image model like the reference: ``config_file`` is an official name such as
    ``"configs/sam2.1/sam2.1_hiera_l.yaml"`` or a path to a YAML file in the reference format."""
    if hydra_overrides_extra:
        raise ValueError(
            "hydra_overrides_extra is not supported: edit a copy of the YAML file, or build a SAM2Config"
        )
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    device = _check_device(device)
    model = build_model(config_file, ckpt_path, device=device, apply_postprocessing=apply_postprocessing)
    if mode == "train":
        model.train()
    return model


def _check_device(device: str | torch.device) -> torch.device:
    """The command line's device rule (:func:`samstream.cli.common.check_device`), raised as
    RuntimeError like before: cpu, cuda, cuda:N or mps, and only what this machine has."""
    from .cli.common import check_device

    try:
        return check_device(device, name="device")
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None


class _Transforms:
    """The parts of the reference's ``SAM2Transforms`` that client code calls."""

    def __init__(self, predictor: ImagePredictor) -> None:
        self._predictor = predictor

    @property
    def resolution(self) -> int:
        return self._predictor.image_size

    def transform_coords(self, coords: torch.Tensor, normalize: bool = False, orig_hw=None) -> torch.Tensor:
        if normalize and orig_hw is None:
            raise ValueError("orig_hw is required to normalize pixel coordinates")
        return to_model_coords(coords, orig_hw, self.resolution, "pixels" if normalize else "normalized")

    def transform_boxes(self, boxes: torch.Tensor, normalize: bool = False, orig_hw=None) -> torch.Tensor:
        return self.transform_coords(boxes.reshape(-1, 2, 2), normalize, orig_hw)

    def postprocess_masks(self, masks: torch.Tensor, orig_hw) -> torch.Tensor:
        return self._predictor.upscale(masks.float(), tuple(orig_hw))


class SAM2ImagePredictor:
    """The reference image predictor's interface: ``set_image``, ``predict`` and friends
    take the same arguments and return the same types and shapes."""

    def __init__(
        self,
        sam_model: SAM2Model,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        self._engine = ImagePredictor(
            sam_model, mask_threshold=mask_threshold, max_hole_area=max_hole_area, max_sprinkle_area=max_sprinkle_area
        )
        self.model = sam_model
        self.mask_threshold = mask_threshold
        self._transforms = _Transforms(self._engine)

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs) -> "SAM2ImagePredictor":
        """Build from an official name (e.g. ``"facebook/sam2.1-hiera-tiny"``), downloading the weights."""
        predictor_args = {k: kwargs.pop(k) for k in ("mask_threshold", "max_hole_area", "max_sprinkle_area") if k in kwargs}
        model = build_model(model_id, None, download=True, device=kwargs.pop("device", "cpu"), **kwargs)
        return cls(model, **predictor_args)

    # -- state the reference exposes
    @property
    def _is_image_set(self) -> bool:
        return self._engine.is_image_set

    @property
    def _is_batch(self) -> bool:
        return self._engine.is_batch

    @property
    def _orig_hw(self) -> list[tuple[int, int]] | None:
        return list(self._engine.orig_hw) or None

    @property
    def _features(self) -> dict | None:
        emb = self._engine.embedding
        if emb is None:
            return None
        return {"image_embed": emb.image_embed, "high_res_feats": list(emb.high_res)}

    @property
    def device(self) -> torch.device:
        return self._engine.device

    # -- reference methods
    def set_image(self, image) -> None:
        self._engine.set_image(image)

    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        if not isinstance(image_list, list):
            raise ValueError("image_list must be a list of HWC RGB numpy arrays")
        for i, img in enumerate(image_list):
            if not isinstance(img, np.ndarray):
                raise ValueError(f"image_list[{i}] must be an np.ndarray in HWC RGB format, got {type(img).__name__}")
        self._engine.set_images(image_list, batch=True)

    def reset_predictor(self) -> None:
        self._engine.reset()

    def get_image_embedding(self) -> torch.Tensor:
        if not self._engine.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        return self._engine.embedding.image_embed

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
        """Masks (C, H, W), IoU predictions (C,) and low-res logits (C, S/4, S/4); with batched
        prompts (B, N, 2) each gets a leading B axis."""
        if not self._engine.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        return self._predict_one(
            point_coords, point_labels, box, mask_input, multimask_output, return_logits, normalize_coords, 0
        )

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
        """One prediction per image set with ``set_image_batch``; lists of masks, IoUs and low-res logits."""
        if not self._engine.is_image_set:
            raise RuntimeError("An image must be set with .set_image_batch(...) before mask prediction.")
        if not self._engine.is_batch:
            raise RuntimeError("predict_batch needs images set with set_image_batch(...)")
        prompts = per_image_prompts(
            len(self._engine.orig_hw), point_coords_batch, point_labels_batch, box_batch, mask_input_batch
        )
        outs = [
            self._predict_one(*prompt, multimask_output, return_logits, normalize_coords, i)
            for i, prompt in enumerate(prompts)
        ]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    def _predict_one(self, points, labels, box, mask_input, multimask_output, return_logits, normalize_coords, index):
        coords = "pixels" if normalize_coords else "normalized"
        prompt = Prompt(points=points, labels=labels, box=box, mask=mask_input, coords=coords)
        tensors = self._engine.prepare(prompt, index, names=REFERENCE_NAMES)
        masks, ious, low_res = self._engine.predict_tensors(
            tensors, multimask_output=multimask_output, return_logits=return_logits, image_index=index
        )
        squeeze = lambda t: t.squeeze(0).float().cpu().numpy() if t.shape[0] == 1 else t.float().cpu().numpy()  # noqa: E731
        # masks come back as float32 (0.0 / 1.0, or logits with return_logits), as the reference returns them
        return squeeze(masks), squeeze(ious), squeeze(low_res)


_VIDEO_OPTION_NAMES = ("fill_hole_area", "non_overlap_masks", "clear_non_cond_mem_around_input", "add_all_frames_to_correct_as_cond")


def build_sam2_video_predictor(
    config_file: str | Path,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: list[str] | None = None,
    apply_postprocessing: bool = True,
    vos_optimized: bool = False,
    **options,
) -> "SAM2VideoPredictor":
    """Build the video predictor like the reference. ``options``: fill_hole_area, non_overlap_masks,
    clear_non_cond_mem_around_input, add_all_frames_to_correct_as_cond. Defaults come from the
    config file, then ``apply_postprocessing`` (fill_hole_area=8), then these options."""
    unknown = sorted(set(options) - set(_VIDEO_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown video predictor option(s) {unknown}; valid: {list(_VIDEO_OPTION_NAMES)}")
    if hydra_overrides_extra:
        raise ValueError("hydra_overrides_extra is not supported: pass the options as keyword arguments")
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    from .build import resolve_config

    _, yaml_options = resolve_config(config_file)
    values = {name: getattr(yaml_options, name) for name in _VIDEO_OPTION_NAMES}
    if apply_postprocessing:
        values["fill_hole_area"] = 8
    values.update(options)
    model = build_model(
        config_file, ckpt_path, device=_check_device(device), apply_postprocessing=apply_postprocessing, for_video=True
    )
    if vos_optimized:
        compile_model(model, parts=VIDEO_PARTS)
    if mode == "train":
        model.train()
    return SAM2VideoPredictor(model, VideoPredictorOptions(**values))


class SAM2VideoPredictor:
    """The reference video predictor's interface over :class:`samstream.video.predictor.VideoPredictor`.

    ``init_state`` returns the session (a :class:`VideoSession`) that the other methods take as
    ``inference_state``; masks are logits of shape (objects, 1, H, W) at the video's size.
    """

    def __init__(self, model: SAM2Model, options: VideoPredictorOptions | None = None) -> None:
        self._engine = VideoPredictor(model, options)
        self.model = model

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __getattr__(self, name: str):
        """The reference's option attributes (``fill_hole_area``, ``non_overlap_masks``, ...)."""
        if name in _VIDEO_OPTION_NAMES and "_engine" in self.__dict__:
            return getattr(self._engine.options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs) -> "SAM2VideoPredictor":
        """Build from an official name (e.g. ``"facebook/sam2.1-hiera-tiny"``), downloading the weights."""
        from .download import resolve_checkpoint

        return build_sam2_video_predictor(model_id, resolve_checkpoint(model_id), device=kwargs.pop("device", "cpu"), **kwargs)

    def init_state(
        self,
        video_path,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
    ) -> VideoSession:
        """Open a video (frame folder, video file, array or iterable). Frames are always decoded
        lazily on the CPU, so ``offload_video_to_cpu`` and ``async_loading_frames`` need no work."""
        return self._engine.open_session(video_path, offload_state_to_cpu=offload_state_to_cpu)

    def add_new_points_or_box(
        self,
        inference_state: VideoSession,
        frame_idx: int,
        obj_id: int,
        points=None,
        labels=None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box=None,
    ):
        result = self._engine.add_prompt(
            inference_state,
            frame_idx,
            obj_id,
            points=points,
            labels=labels,
            box=box,
            coords="pixels" if normalize_coords else "normalized",
            clear_old=clear_old_points,
        )
        return tuple(result)

    def add_new_points(self, *args, **kwargs):
        """Older name of :meth:`add_new_points_or_box`."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, inference_state: VideoSession, frame_idx: int, obj_id: int, mask):
        return tuple(self._engine.add_mask(inference_state, frame_idx, obj_id, mask))

    def propagate_in_video(
        self,
        inference_state: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ):
        if not inference_state.objects:
            # the reference refuses to track before any object has a prompt
            raise RuntimeError("No input points or masks are provided for any object; please add inputs first.")
        for result in self._engine.propagate(
            inference_state, start_frame_idx=start_frame_idx, max_frames=max_frame_num_to_track, reverse=reverse
        ):
            yield tuple(result)

    def clear_all_prompts_in_frame(self, inference_state: VideoSession, frame_idx: int, obj_id: int, need_output: bool = True):
        result = self._engine.clear_prompts(inference_state, frame_idx, obj_id)
        return tuple(result) if need_output else None

    def remove_object(self, inference_state: VideoSession, obj_id: int, strict: bool = False, need_output: bool = True):
        removed = self._engine.remove_object(inference_state, obj_id, strict=strict)
        if not need_output:
            return removed.obj_ids, []
        updated = [(t, self._engine.frame_masks(inference_state, t).masks) for t in removed.prompted_frames]
        return removed.obj_ids, updated

    def reset_state(self, inference_state: VideoSession) -> None:
        self._engine.reset_session(inference_state)
