"""COCO run-length encoding of masks, the one place samstream encodes and decodes RLE.

Two flavours:

* *uncompressed RLE* ``{"size": [H, W], "counts": [int, ...]}``: run lengths over the
  mask read column by column (Fortran order), the first run counting background pixels
  (so it is 0 when the top-left pixel is foreground);
* *COCO RLE* ``{"size": [H, W], "counts": str}``: the same runs in pycocotools' compact
  string form (JSON-serializable).

Masks are bool ``[N, H, W]`` (numpy or torch); pycocotools does the encoding, one call per batch.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch

__all__ = [
    "require_pycocotools",
    "masks_to_uncompressed_rle",
    "uncompressed_rle_to_mask",
    "encode_coco_rle",
    "decode_coco_rle",
    "coco_rle_from_uncompressed",
    "coco_rle_areas",
    "coco_rle_boxes_xywh",
    "area_from_rle",
]


def _mask_api() -> Any:
    try:
        from pycocotools import mask as mask_api
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError("COCO RLE needs pycocotools: install it with `pip install pycocotools`") from None
    return mask_api


def require_pycocotools() -> None:
    """Raise a RuntimeError that says how to install pycocotools when it is missing."""
    _mask_api()


def _pycoco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """A COCO RLE with the bytes counts pycocotools' functions take."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def _fortran_stack(masks: torch.Tensor | np.ndarray) -> np.ndarray:
    """[N, H, W] bool -> uint8 [H, W, N] in Fortran order (what pycocotools reads)."""
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape [N, H, W], got {tuple(masks.shape)}")
    if isinstance(masks, torch.Tensor):
        column_major = masks.detach().to(torch.bool).transpose(1, 2).contiguous().cpu().numpy()  # [N, W, H]
    else:
        column_major = np.ascontiguousarray(np.asarray(masks).transpose(0, 2, 1), dtype=np.bool_)  # [N, W, H]
    return column_major.view(np.uint8).transpose(2, 1, 0)  # [H, W, N], Fortran order


def encode_coco_rle(masks: torch.Tensor | np.ndarray) -> list[dict[str, Any]]:
    """Bool masks [N, H, W] -> N COCO RLEs ``{"size": [H, W], "counts": str}``, in one pycocotools call."""
    stack = _fortran_stack(masks)
    if stack.shape[2] == 0:
        return []
    rles = _mask_api().encode(stack)
    return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")} for r in rles]


def decode_coco_rle(rles: Sequence[dict[str, Any]], image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """COCO RLEs (str or bytes counts) -> bool [N, H, W] (a view, each mask column-major).

    ``image_hw`` gives the shape of an empty result."""
    if len(rles) == 0:
        if image_hw is None:
            raise ValueError("decode_coco_rle needs image_hw to decode an empty list")
        return np.zeros((0, *image_hw), dtype=bool)
    objs = [_pycoco_rle(r) for r in rles]
    with warnings.catch_warnings():  # pycocotools' own numpy 2 deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        stack = _mask_api().decode(objs)  # uint8 [H, W, N], Fortran order
    if stack.ndim == 2:
        stack = stack[:, :, None]
    return stack.view(np.bool_).transpose(2, 0, 1)


def masks_to_uncompressed_rle(masks: torch.Tensor | np.ndarray) -> list[dict[str, Any]]:
    """Bool masks [N, H, W] -> N uncompressed RLEs ``{"size": [H, W], "counts": [int, ...]}``.

    All run boundaries are found in one pass over the batch; only the final split into
    per-mask lists is per mask.
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape [N, H, W], got {tuple(masks.shape)}")
    count, height, width = masks.shape
    if count == 0:
        return []
    total = height * width
    if isinstance(masks, torch.Tensor):
        columns = masks.detach().to(torch.bool).transpose(1, 2).contiguous().cpu()  # [N, W, H]
    else:  # no copy for column-major masks such as decode_coco_rle's
        columns = torch.from_numpy(np.ascontiguousarray(np.asarray(masks).transpose(0, 2, 1), dtype=np.bool_))
    flat = columns.reshape(count, total)  # pixels in column-major order
    changes = (flat[:, 1:] != flat[:, :-1]).nonzero()  # [K, 2] (mask, position), sorted by mask
    per_mask = torch.bincount(changes[:, 0], minlength=count)
    # run ends: every change position + 1, then the end of the mask
    ends_per_mask = torch.split(changes[:, 1] + 1, per_mask.tolist())
    starts_foreground = flat[:, 0].tolist()
    out = []
    for ends, first_on in zip(ends_per_mask, starts_foreground):
        bounds = torch.cat([torch.zeros(1, dtype=ends.dtype), ends, torch.tensor([total], dtype=ends.dtype)])
        runs = (bounds[1:] - bounds[:-1]).tolist()
        out.append({"size": [height, width], "counts": ([0] + runs) if first_on else runs})
    return out


def uncompressed_rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Uncompressed RLE -> bool [H, W]."""
    height, width = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"RLE counts add up to {int(counts.sum())}, expected {height * width} for size {rle['size']}")
    values = (np.arange(len(counts)) % 2).astype(np.bool_)  # runs alternate background / foreground
    return np.repeat(values, counts).reshape(width, height).T


def coco_rle_from_uncompressed(rle: dict[str, Any]) -> dict[str, Any]:
    """Uncompressed RLE -> COCO RLE with string counts (JSON-serializable)."""
    height, width = (int(v) for v in rle["size"])
    coco = _mask_api().frPyObjects({"size": [height, width], "counts": list(rle["counts"])}, height, width)
    return {"size": [int(coco["size"][0]), int(coco["size"][1])], "counts": coco["counts"].decode("ascii")}


def coco_rle_areas(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """Foreground pixel counts of COCO RLEs -> int64 [N], in one pycocotools call."""
    if len(rles) == 0:
        return np.zeros(0, dtype=np.int64)
    objs = [_pycoco_rle(r) for r in rles]
    return np.asarray(_mask_api().area(objs), dtype=np.int64)


def area_from_rle(rle: dict[str, Any]) -> int:
    """Foreground pixel count of an uncompressed or COCO RLE."""
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        return int(_mask_api().area(_pycoco_rle(rle)))
    return int(sum(counts[1::2]))


def coco_rle_boxes_xywh(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """Tight boxes of COCO RLEs -> float64 [N, 4] XYWH (zeros for an empty mask), in one pycocotools call."""
    if len(rles) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    objs = [_pycoco_rle(r) for r in rles]
    return np.asarray(_mask_api().toBbox(objs), dtype=np.float64).reshape(len(rles), 4)
