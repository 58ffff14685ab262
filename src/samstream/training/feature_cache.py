"""Image features of a frozen encoder, computed once and kept on disk (low-memory fine-tuning).

With ``model.freeze_image_encoder`` the encoder's output depends only on the frames, so a clip
seen again needs no encoder pass: :class:`FeatureCache` keys each clip by the SHA-1 of its
(augmented, normalised) frames and of the frozen encoder's weights, stores the
:class:`~samstream.modeling.sam2.FrameFeatures` as one safetensors file per clip (written
atomically) and gives them back on a hit. An epoch then costs only the memory and decoder
passes, and the encoder's activations are never held. Hits need clips that repeat exactly:
augmentation off (``data.augment``: flip 0, scale 1-1, no jitter) and fixed clips, e.g. image
datasets or videos with as many frames as the clip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from samstream.io.atomic import atomic_output
from samstream.modeling.sam2 import FrameFeatures, SAM2Model

__all__ = ["FeatureCache"]


def _encoder_fingerprint(model: SAM2Model) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(model.image_encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for proj in (getattr(model.sam_mask_decoder, "conv_s0", None), getattr(model.sam_mask_decoder, "conv_s1", None)):
        if proj is not None:  # the decoder's high-resolution projections are part of the features
            for tensor in proj.state_dict().values():
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """Frozen-encoder features per clip in ``root`` (created when missing).

    Args:
        root: the cache folder (shared between runs: keys include the encoder's weights).
        model: the model whose image encoder is frozen.
    """

    def __init__(self, root: str | Path, model: SAM2Model) -> None:
        trainable = [n for n, p in model.image_encoder.named_parameters() if p.requires_grad]
        if trainable:
            raise ValueError(
                "the feature cache needs a frozen image encoder (model.freeze_image_encoder: true); "
                f"trainable: {trainable[0]} and {len(trainable) - 1} more"
            )
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fingerprint = _encoder_fingerprint(model)
        self.hits = 0
        self.misses = 0

    def path_for(self, frames: torch.Tensor) -> Path:
        """The file of a clip: frames [T, 3, S, S]."""
        digest = hashlib.sha1(self.fingerprint.encode())
        digest.update(str(tuple(frames.shape)).encode())
        digest.update(frames.detach().cpu().contiguous().numpy().tobytes())
        return self.root / f"{digest.hexdigest()}.safetensors"

    def features(self, model: SAM2Model, frames: torch.Tensor) -> FrameFeatures:
        """The clip's features: from disk, or computed (without autograd) and stored."""
        path = self.path_for(frames)
        if path.is_file():
            self.hits += 1
            stored = load_file(str(path), device=str(frames.device))
            n = len([k for k in stored if k.startswith("feature")])
            return FrameFeatures([stored[f"feature{i}"] for i in range(n)], [stored[f"position{i}"] for i in range(n)])
        self.misses += 1
        with torch.no_grad():
            feats = model.encode_images(frames)
        tensors = {f"feature{i}": f.contiguous().cpu() for i, f in enumerate(feats.features)}
        tensors |= {f"position{i}": p.contiguous().cpu() for i, p in enumerate(feats.position)}
        with atomic_output(path) as temp:
            save_file(tensors, str(temp))
        return FrameFeatures([f.detach() for f in feats.features], [p.detach() for p in feats.position])
