"""OWLv2 (transformers ``Owlv2ForObjectDetection``; OWL-ViT configs work too): boxes for text queries."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .base import Detections, check_image, clip_boxes
from .hub import load_detector

__all__ = ["Owlv2Proposer", "DEFAULT_OWLV2"]

DEFAULT_OWLV2 = "google/owlv2-base-patch16-ensemble"


class Owlv2Proposer:
    """Boxes of the objects each phrase names, by OWLv2 (one query per phrase).

    threshold: minimum score of a box for its best query; nms_iou: boxes of the same phrase
    overlapping more than this are reduced to the best one (OWL predicts one box per patch).
    """

    name = "owlv2"

    def __init__(
        self, processor: Any, model: Any, *, threshold: float = 0.1, nms_iou: float = 0.3, model_type: str = "owlv2", source: str = ""
    ) -> None:
        for flag, value in (("threshold", threshold), ("nms_iou", nms_iou)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{flag} must be in [0, 1], got {value}")
        self.processor = processor
        self.model = model
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        # OWLv2 pads the image to a square at the bottom and right before resizing; OWL-ViT stretches it
        self.pads_to_square = model_type == "owlv2"
        self.source = source

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_OWLV2,
        *,
        device: Any = "cpu",
        cache_dir: str | os.PathLike[str] | None = None,
        threshold: float = 0.1,
        nms_iou: float = 0.3,
    ) -> "Owlv2Proposer":
        loaded = load_detector(name_or_path, device=device, cache_dir=cache_dir, model_types=("owlv2", "owlvit"))
        return cls(
            loaded.processor, loaded.model, threshold=threshold, nms_iou=nms_iou, model_type=loaded.model_type, source=loaded.source
        )

    @torch.inference_mode()
    def propose(self, image: np.ndarray, phrases: tuple[str, ...]) -> Detections:
        """Detections on ``image`` [H, W, 3] uint8 for ``phrases`` (normalised), highest score first."""
        from torchvision.ops import batched_nms

        image = check_image(image)
        height, width = image.shape[:2]
        queries = list(phrases)
        device = next(self.model.parameters()).device
        inputs = self.processor(text=[queries], images=np.array(image), return_tensors="pt").to(device)
        outputs = self.model(**inputs)
        side = max(height, width)
        target = (side, side) if self.pads_to_square else (height, width)
        found = self.processor.post_process_grounded_object_detection(
            outputs, threshold=self.threshold, target_sizes=[target], text_labels=[queries]
        )[0]
        boxes = torch.as_tensor(clip_boxes(found["boxes"].float().cpu().numpy(), height, width), dtype=torch.float32)
        scores = found["scores"].float().cpu()
        classes = found["labels"].cpu()
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # boxes wholly in the padding vanish
        index = torch.nonzero(visible).flatten()
        keep = index[batched_nms(boxes[index], scores[index], classes[index], self.nms_iou)]
        detections = Detections(
            boxes[keep].numpy(), scores[keep].numpy(), tuple(queries[int(c)] for c in classes[keep])
        )
        return detections.sorted()
