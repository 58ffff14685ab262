"""The one connected-components helper: both back ends agree, and the mask clean-ups use it."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from samstream.image.amg_utils import remove_small_regions
from samstream.image.postprocess import component_areas, connected_components, fill_holes


def _blobs() -> np.ndarray:
    mask = np.zeros((12, 14), dtype=bool)
    mask[1:4, 1:4] = True  # 9 pixels
    mask[4, 4] = True  # touches the first blob diagonally: 8-connected, so the same component
    mask[8:11, 9:13] = True  # 12 pixels
    mask[0, 13] = True  # a lone pixel
    return mask


def _without_cv2(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("cv2 hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_both_back_ends_find_the_same_eight_connected_components(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cv2")
    mask = _blobs()
    per_pixel_areas = []
    for hide_cv2 in (False, True):
        if hide_cv2:
            _without_cv2(monkeypatch)
        labels, areas = connected_components(mask)
        areas = np.asarray(areas)
        # the numbering is the back end's own (OpenCV scans in blocks, scipy row by row)
        assert areas[0] == mask.size - 23 and sorted(areas[1:].tolist()) == [1, 10, 12]
        assert labels[4, 4] == labels[1, 1] != labels[0, 13]  # diagonal neighbours join
        assert ((labels == 0) == ~mask).all()
        per_pixel_areas.append(np.where(mask, areas[labels], 0))
    np.testing.assert_array_equal(per_pixel_areas[0], per_pixel_areas[1])


def test_connected_components_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="binary"):
        connected_components(np.zeros((2, 3, 4), dtype=bool))


def test_callers_agree_on_component_areas() -> None:
    mask = _blobs()
    areas = component_areas(torch.from_numpy(mask)[None, None])[0, 0].numpy()
    assert areas[1, 1] == 10 and areas[0, 13] == 1 and areas[9, 10] == 12 and areas[0, 0] == 0
    # holes: the background outside the blobs is one big component, so nothing small to fill
    logits = torch.where(torch.from_numpy(mask), 5.0, -5.0)[None, None]
    assert torch.equal(fill_holes(logits, max_area=5), logits)
    islands, changed = remove_small_regions(mask, area_thresh=2, mode="islands")
    assert changed and not islands[0, 13] and islands[1, 1] and islands[9, 10]
