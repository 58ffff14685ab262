"""SAM's automatic mask generator as a class-agnostic object proposer (every mask, label "object")."""

from __future__ import annotations

import numpy as np

from ..image.automatic import AutomaticMaskGenerator
from .base import Detections, check_image

__all__ = ["AutomaticMaskProposer", "AGNOSTIC_LABEL"]

AGNOSTIC_LABEL = "object"


class AutomaticMaskProposer:
    """Every mask the generator finds, as a detection with its mask (phrases are ignored).

    Order: highest predicted IoU first, then the larger mask. score = predicted IoU; box = the
    mask's tight box (x0, y0, x1 + 1, y1 + 1 in pixels).
    """

    name = "automatic"

    def __init__(self, generator: AutomaticMaskGenerator, *, label: str = AGNOSTIC_LABEL) -> None:
        if not isinstance(generator, AutomaticMaskGenerator):
            raise TypeError(f"generator must be an AutomaticMaskGenerator, got {type(generator).__name__}")
        self.generator = generator
        self.label = label

    def propose(self, image: np.ndarray, phrases: tuple[str, ...] = ()) -> Detections:
        from ..io.rle import decode_coco_rle, uncompressed_rle_to_mask

        image = check_image(image)
        found = self.generator.generate(image)
        found.sort(key=lambda m: (-m.predicted_iou, -m.area))
        masks = []
        for m in found:
            seg = m.segmentation
            if isinstance(seg, dict):
                seg = uncompressed_rle_to_mask(seg) if isinstance(seg.get("counts"), list) else decode_coco_rle([seg])[0]
            masks.append(np.asarray(seg, dtype=bool))
        if not masks:
            return Detections(np.zeros((0, 4)), np.zeros((0,)), (), np.zeros((0,) + image.shape[:2], dtype=bool))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (m.bbox for m in found)], dtype=np.float64)
        return Detections(boxes, np.array([m.predicted_iou for m in found]), (self.label,) * len(found), np.stack(masks))
