"""Building a model from a preset name or a config file, with its weights."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch

from .accel.compile import compile_model
from .accel.cpu import apply_cpu_backend
from .accel.int8 import quantize_int8
from .checkpoint import load_weights
from .config import MaskDecoderExtraConfig, SAM2Config, VideoOptions, load_config
from .modeling.sam2 import SAM2Model
from .bundled import bundled_model, bundled_weights
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
    bundled = bundled_model(text)
    if bundled is not None:
        return load_config(bundled.config_path)
    try:
        return preset_config(text), VideoOptions()
    except ValueError:
        if text.endswith((".yaml", ".yml")):
            raise FileNotFoundError(f"config file not found and not an official config name: {text}") from None
        raise


Accel = Literal["auto", "cpu"] | None
ACCEL_CHOICES = ("auto", "cpu", None)
Quantize = Literal["int8"] | None
QUANTIZE_CHOICES = ("int8", None)


def fast_cpu_from_env() -> bool:
    """``SAMSTREAM_FAST_CPU`` (read when called): "0", "false", "no" or "off" turn the
    automatic CPU backend off; unset or anything else leaves it on."""
    return os.environ.get("SAMSTREAM_FAST_CPU", "1").strip().lower() not in ("0", "false", "no", "off")


def resolve_accel(accel: Accel, device: torch.device) -> str | None:
    """The backend ``accel`` stands for on ``device``: "cpu" or None (plain PyTorch).

    "auto": the CPU backend on a CPU device unless ``SAMSTREAM_FAST_CPU`` turns it off.
    """
    if accel not in ACCEL_CHOICES:
        raise ValueError(f"accel must be one of {ACCEL_CHOICES}, got {accel!r}")
    if accel == "cpu" and device.type != "cpu":
        raise ValueError(f"accel='cpu' needs a CPU device, got device={str(device)!r}")
    if accel == "auto":
        return "cpu" if device.type == "cpu" and fast_cpu_from_env() else None
    return accel


def check_quantize(quantize: Quantize, device: torch.device) -> None:
    """``quantize`` is one of QUANTIZE_CHOICES, and "int8" asks for a CPU device."""
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES}, got {quantize!r}")
    if quantize == "int8" and device.type != "cpu":
        raise ValueError(f"quantize='int8' runs on the CPU only, got device={str(device)!r}")


def build_model(
    model: str | Path | SAM2Config,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    apply_postprocessing: bool = True,
    for_video: bool = False,
    download: bool = False,
    accel: Accel = "auto",
    quantize: Quantize = None,
) -> SAM2Model:
    """Build a SAM 2 model in eval mode.

    ``model``: an official name (``"sam2.1_hiera_tiny"``, ``"sam2.1_hiera_t"``,
    ``"configs/sam2.1/sam2.1_hiera_t.yaml"``), a bundled model's name
    (``"samstream-synthetic"``, whose weights ship with the package and are loaded
    without a checkpoint argument), a YAML file in the reference format, or a
    :class:`SAM2Config`. ``checkpoint``: a ``.pt``/``.safetensors`` path; with
    ``download=True`` and no path, the official weights are fetched by name.

    ``accel``: "auto" (the CPU inference backend of :mod:`samstream.accel.cpu` when
    ``device`` is a CPU, see :func:`resolve_accel`), "cpu" (that backend), or None (plain
    PyTorch modules, e.g. for training or export; same results). ``quantize="int8"``: int8
    linear layers for CPU inference (:func:`samstream.accel.quantize_int8`; approximate
    results, CPU devices only; the weights and the state dict stay float). With
    ``config.compile_image_encoder`` the image encoder is compiled (:func:`samstream.accel.compile_model`).
    """
    device = torch.device(device)
    backend = resolve_accel(accel, device)
    check_quantize(quantize, device)
    config, _ = resolve_config(model)
    if apply_postprocessing:
        config = postprocessing_config(config, for_video=for_video)
    net = SAM2Model(config)
    bundled = None if isinstance(model, SAM2Config) else bundled_model(str(model))
    if checkpoint is None and bundled is not None:
        checkpoint = bundled_weights(bundled)
    if checkpoint is None and download:
        from .download import resolve_checkpoint

        checkpoint = resolve_checkpoint(str(model))
    if checkpoint is not None:
        load_weights(net, checkpoint)
    net = net.to(device).eval()
    if backend == "cpu":
        apply_cpu_backend(net)
    if quantize == "int8":
        quantize_int8(net)
    if config.compile_image_encoder:
        compile_model(net, parts=("image_encoder",))
    return net
