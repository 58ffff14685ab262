"""Output: crash-safe file writes (:mod:`.atomic`), COCO RLE (:mod:`.rle`), mask overlays (:mod:`.overlay`) and per-frame mask writers (:mod:`.writers`)."""
