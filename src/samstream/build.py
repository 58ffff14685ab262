"""Building a model from a preset name or a config file, with its weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from .checkpoint import load_weights
from .config import MaskDecoderExtraConfig, SAM2Config, VideoOptions, load_config
from .modeling.sam2 import SAM2Model
from .presets import preset_config


def postprocessing_config(config: SAM2Config, *, for_video: bool) -> SAM2Config:
    """What the reference's builders set with ``apply_postprocessing=True``: dynamic
    multimask via stability (delta 0.05, threshold 0.98), and for video, binarized
    masks from clicks for the memory encoder."""
    config = replace(
        config,
        sam_mask_decoder_extra_args=MaskDecoderExtraConfig(
            dynamic_multimask_via_stability=True,
            dynamic_multimask_stability_delta=0.05,
            dynamic_multimask_stability_thresh=0.98,
        ),
    )
    if for_video:
        config = replace(config, binarize_mask_from_pts_for_mem_enc=True)
    return config


def resolve_config(model: str | Path | SAM2Config) -> tuple[SAM2Config, VideoOptions]:
    """A typed config from a preset name/alias, a YAML path, or a config itself."""
    if isinstance(model, SAM2Config):
        return model, VideoOptions()
    text = str(model)
    if text.endswith((".yaml", ".yml")) and Path(text).is_file():
        return load_config(text)
    try:
        return preset_config(text), VideoOptions()
    except ValueError:
        if text.endswith((".yaml", ".yml")):
            raise FileNotFoundError(f"config file not found and not an official config name: {text}") from None
        raise


def build_model(
    model: str | Path | SAM2Config,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    apply_postprocessing: bool = True,
    for_video: bool = False,
    download: bool = False,
) -> SAM2Model:
    """Build a SAM 2 model in eval mode.

    ``model``: an official name (``"sam2.1_hiera_tiny"``, ``"sam2.1_hiera_t"``,
    ``"configs/sam2.1/sam2.1_hiera_t.yaml"``), a YAML file in the reference format, or a
    :class:`SAM2Config`. ``checkpoint``: a ``.pt``/``.safetensors`` path; with
    ``download=True`` and no path, the official weights are fetched by name.
    """
    config, _ = resolve_config(model)
    if apply_postprocessing:
        config = postprocessing_config(config, for_video=for_video)
    net = SAM2Model(config)
    if checkpoint is None and download:
        from .download import resolve_checkpoint

        checkpoint = resolve_checkpoint(str(model))
    if checkpoint is not None:
        load_weights(net, checkpoint)
    return net.to(device).eval()
