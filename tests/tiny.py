"""A tiny SAM 2 model and test data built in code, for unit and e2e tests (only tests/parity use ../shared).

Every size is the smallest the architecture allows so a forward pass takes milliseconds on CPU:
a 4-stage Hiera with five blocks, 128-pixel input, 32 channels in the heads.

:func:`write_tiny_model` writes that model as the CLI takes it (reference-format YAML plus
``{"model": state_dict}`` weights); :func:`prompt_cases` and :func:`moving_clip` give images'
prompts and a short video made from scikit-image's sample photographs; :func:`write_mp4` and
:func:`write_jpeg_folder` write frames as the video inputs the tools read.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from samstream.config import (
    CXBlockConfig,
    FpnNeckConfig,
    FuserConfig,
    HieraConfig,
    ImageEncoderConfig,
    MaskDownSamplerConfig,
    MemoryAttentionConfig,
    MemoryAttentionLayerConfig,
    MemoryEncoderConfig,
    RoPEAttentionConfig,
    SAM2Config,
    SinePositionConfig,
)

IMAGE_SIZE = 128
_EMBED = 8  # channels of the first Hiera stage (8, 16, 32, 64)
_D_MODEL = 32
_MEM_DIM = 16


def tiny_config(*, image_size: int = IMAGE_SIZE) -> SAM2Config:
    """A SAM 2.1-style config (object pointers, occlusion head, high-res features) at toy size."""
    grid = image_size // 16  # side of the stride-16 feature map
    rope = RoPEAttentionConfig(embedding_dim=_D_MODEL, num_heads=1, feat_sizes=(grid, grid), dropout=0.1)
    return SAM2Config(
        image_encoder=ImageEncoderConfig(
            scalp=1,
            trunk=HieraConfig(
                embed_dim=_EMBED,
                num_heads=1,
                stages=(1, 1, 2, 1),
                global_att_blocks=(3,),  # not a query-pooling block (blocks 1, 2 and 4 pool)
                window_pos_embed_bkg_spatial_size=(4, 4),
            ),
            neck=FpnNeckConfig(
                d_model=_D_MODEL,
                backbone_channel_list=(8 * _EMBED, 4 * _EMBED, 2 * _EMBED, _EMBED),
                position_encoding=SinePositionConfig(num_pos_feats=_D_MODEL),
                fpn_top_down_levels=(2, 3),
                fpn_interp_model="nearest",
            ),
        ),
        memory_attention=MemoryAttentionConfig(
            d_model=_D_MODEL,
            num_layers=1,
            layer=MemoryAttentionLayerConfig(
                d_model=_D_MODEL,
                dim_feedforward=64,
                self_attention=rope,
                cross_attention=RoPEAttentionConfig(
                    embedding_dim=_D_MODEL, num_heads=1, feat_sizes=(grid, grid), dropout=0.1,
                    rope_k_repeat=True, kv_in_dim=_MEM_DIM,
                ),
            ),
        ),
        memory_encoder=MemoryEncoderConfig(
            out_dim=_MEM_DIM,
            in_dim=_D_MODEL,
            position_encoding=SinePositionConfig(num_pos_feats=_MEM_DIM),
            mask_downsampler=MaskDownSamplerConfig(embed_dim=_D_MODEL, kernel_size=3, stride=2, padding=1),
            fuser=FuserConfig(layer=CXBlockConfig(dim=_D_MODEL), num_layers=1),
        ),
        image_size=image_size,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        no_obj_embed_spatial=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        proj_tpos_enc_in_obj_ptrs=True,
        use_signed_tpos_enc_to_obj_ptrs=True,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
        binarize_mask_from_pts_for_mem_enc=True,
    )


# --------------------------------------------------------------------------- the model as files

#: how much every parameter is moved off its initial value (so none keeps a constant init)
_PERTURB_STD = 0.02
#: the mask hypernetworks' output layers are scaled by this, so that mask logits vary across pixels
_HYPER_SCALE = 4.0
#: added to the object-score head's output bias, so that prompted objects are present
_OBJECT_BIAS = 2.0


class TinyModelFiles(NamedTuple):
    """A tiny model on disk, as ``samstream --config CONFIG --checkpoint CHECKPOINT`` takes it."""

    config: Path  # reference-format YAML (``model:`` tree with ``_target_`` names)
    checkpoint: Path  # ``{"model": state_dict}`` saved with torch.save

    def cli_args(self) -> list[str]:
        return ["--config", str(self.config), "--checkpoint", str(self.checkpoint)]


def tiny_state_dict(config: SAM2Config, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights for ``config`` that make a usable test model: every parameter
    perturbed, mask hypernetwork outputs scaled up, object-score head biased towards "present"."""
    from samstream.modeling.sam2 import SAM2Model

    torch.manual_seed(seed)
    model = SAM2Model(config)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().clone()
        if tensor.is_floating_point():
            tensor += _PERTURB_STD * torch.randn(tensor.shape, generator=generator)
        if name.startswith("sam_mask_decoder.output_hypernetworks_mlps.") and ".layers.2." in name:
            tensor *= _HYPER_SCALE
        if name == "sam_mask_decoder.pred_obj_score_head.layers.2.bias":
            tensor += _OBJECT_BIAS
        state[name] = tensor
    return state


def write_tiny_model(folder: Path, *, seed: int = 0, image_size: int = IMAGE_SIZE) -> TinyModelFiles:
    """Write ``folder/model.yaml`` (:func:`tiny_config`) and ``folder/model.pt`` (:func:`tiny_state_dict`)."""
    from samstream.io.atomic import atomic_output
    from samstream.training.model_yaml import write_reference_yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_config(image_size=image_size)
    files = TinyModelFiles(config=folder / "model.yaml", checkpoint=folder / "model.pt")
    write_reference_yaml(files.config, config)
    with atomic_output(files.checkpoint) as temp:
        torch.save({"model": tiny_state_dict(config, seed=seed)}, temp)
    return files


# --------------------------------------------------------------------------- images, prompts, video


def sample_image(name: str) -> np.ndarray:
    """A scikit-image sample photograph as HWC uint8 RGB: "astronaut" (512x512) or "coffee" (400x600)."""
    from skimage import data

    if name not in ("astronaut", "coffee"):
        raise ValueError(f"name: expected 'astronaut' or 'coffee', got {name!r}")
    return np.ascontiguousarray(getattr(data, name)())


def prompt_cases(height: int, width: int) -> list[dict]:
    """Prompt-only predictor calls (SAM2ImagePredictor.predict keyword arguments) placed at fixed
    fractions of an image: one click, a box, clicks with a box, a positive and a negative click."""

    def xy(*fractions: float) -> list[float]:
        return [f * (width if i % 2 == 0 else height) for i, f in enumerate(fractions)]

    click = xy(0.45, 0.4)
    return [
        {"point_coords": [click], "point_labels": [1], "multimask_output": True},
        {"box": xy(0.2, 0.15, 0.7, 0.8), "multimask_output": False},
        {
            "point_coords": [click, xy(0.6, 0.6), xy(0.25, 0.7)],
            "point_labels": [1, 1, 0],
            "box": xy(0.1, 0.1, 0.9, 0.9),
            "multimask_output": True,
        },
        {"point_coords": [click, xy(0.3, 0.5)], "point_labels": [1, 0], "multimask_output": False},
    ]


def moving_clip(num_frames: int = 24, height: int = 136, width: int = 320) -> np.ndarray:
    """A camera pan over the astronaut photograph: [T, H, W, 3] uint8, the window moving
    4 pixels right and 2 down per frame."""
    photo = sample_image("astronaut")
    dx, dy, top = 4, 2, 150
    if width + dx * (num_frames - 1) > photo.shape[1] or top + height + dy * (num_frames - 1) > photo.shape[0]:
        raise ValueError(f"a {num_frames}-frame {width}x{height} pan does not fit in the {photo.shape[1]}x{photo.shape[0]} photo")
    frames = [photo[top + dy * t : top + dy * t + height, dx * t : dx * t + width] for t in range(num_frames)]
    return np.ascontiguousarray(np.stack(frames))


def write_jpeg_folder(folder: Path, frames: np.ndarray) -> Path:
    """Write frames [T, H, W, 3] as ``folder/00000.jpg`` ... (the reference's frame-folder layout)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=95)
    return folder


def write_mp4(path: Path, frames: np.ndarray, *, fps: int = 25, crf: int | None = None, faststart: bool = False) -> Path:
    """Encode frames [T, H, W, 3] uint8 as an H.264 MP4 at ``path`` (PyAV; ``crf`` sets the quality,
    ``faststart`` puts the index before the frames)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)} if crf is not None else {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return Path(path)


def read_jpeg_folder(folder: Path) -> np.ndarray:
    """The frames of a JPEG folder, decoded: [T, H, W, 3] uint8."""
    paths = sorted(Path(folder).glob("*.jpg"))
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
