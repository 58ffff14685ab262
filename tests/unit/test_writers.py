"""Tests of samstream.io.atomic, samstream.io.overlay and samstream.io.writers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstream.io import atomic
from samstream.io.atomic import atomic_save_png, atomic_write_bytes, atomic_write_json
from samstream.io.writers import (
    DAVIS_PALETTE,
    WRITER_FORMATS,
    CocoRleWriter,
    OverlayVideoWriter,
    PalettePngWriter,
    PerObjectPngWriter,
    make_writer,
    read_coco_rle,
)
from samstream.io.overlay import object_color, overlay_masks

HEIGHT, WIDTH = 24, 31  # odd width on purpose (video writer must pad)


def make_masks(frame_idx: int, count: int = 2) -> np.ndarray:
    """(count, H, W) bool: a square per object, moving with the frame index."""
    masks = np.zeros((count, HEIGHT, WIDTH), dtype=bool)
    for k in range(count):
        top, left = 2 + k * 6, (frame_idx + 4 * k) % (WIDTH - 6)
        masks[k, top : top + 8, left : left + 6] = True
    return masks


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(atomic.TEMP_SUFFIX) or p.name.endswith(".partial")]


# --------------------------------------------------------------------------- atomic helpers


def test_atomic_helpers(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "data.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two", fsync=True)
    assert target.read_bytes() == b"two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not the 0o600 of temp files

    atomic_write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="x.json"):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2]}  # old content kept

    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    atomic_save_png(tmp_path / "p.png", labels, palette=DAVIS_PALETTE)
    image = Image.open(tmp_path / "p.png")
    assert image.mode == "P" and np.array_equal(np.array(image), labels)
    atomic_save_png(tmp_path / "b.png", labels > 5)
    assert set(np.unique(np.array(Image.open(tmp_path / "b.png")))) == {0, 255}
    with pytest.raises(ValueError, match="shape"):
        atomic_save_png(tmp_path / "bad.png", np.zeros((2, 2, 2), dtype=np.uint8))
    assert temp_files(tmp_path) == []


def test_atomic_write_cleans_up_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.txt"
    target.write_bytes(b"old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_davis_palette() -> None:
    assert len(DAVIS_PALETTE) == 768
    triplets = [tuple(DAVIS_PALETTE[3 * i : 3 * i + 3]) for i in range(9)]
    assert triplets == [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128),
        (128, 0, 128), (0, 128, 128), (128, 128, 128), (64, 0, 0),
    ]  # fmt: skip


# --------------------------------------------------------------------------- PNG writers


def test_per_object_png_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "sav"
    with PerObjectPngWriter(out) as writer:
        for frame_idx in range(3):
            masks = make_masks(frame_idx)
            writer.write(frame_idx, [1, 12], masks)
            for k, obj_id in enumerate((1, 12)):
                path = out / f"{obj_id:03d}" / f"{frame_idx:05d}.png"
                read = np.array(Image.open(path))  # valid right after each write
                assert read.dtype == np.uint8 and set(np.unique(read)) <= {0, 255}
                assert np.array_equal(read > 0, masks[k])
    assert sorted(p.name for p in (out / "012").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert temp_files(out) == []
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(3, [1], make_masks(3, 1))


def test_palette_png_round_trip(tmp_path: Path) -> None:
    writer = PalettePngWriter(tmp_path / "davis")
    masks = make_masks(0, 3)
    masks[2] |= masks[0]  # overlap: the later object must win
    writer.write(7, [1, 2, 5], masks)
    writer.close()
    image = Image.open(tmp_path / "davis" / "00007.png")
    assert image.mode == "P"
    assert bytes(image.getpalette()[:30]) == DAVIS_PALETTE[:30]
    labels = np.array(image)
    expected = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for obj_id, mask in zip((1, 2, 5), masks):
        expected[mask] = obj_id
    assert np.array_equal(labels, expected)
    assert not (labels == 1).any()  # fully covered by object 5
    with pytest.raises(ValueError, match="1..255"):
        PalettePngWriter(tmp_path / "x").write(0, [300], make_masks(0, 1))


def test_input_validation(tmp_path: Path) -> None:
    writer = PerObjectPngWriter(tmp_path)
    with pytest.raises(ValueError, match="dtype bool"):
        writer.write(0, [1], make_masks(0, 1).astype(np.float32))
    with pytest.raises(ValueError, match="2 masks"):
        writer.write(0, [1], make_masks(0, 2))
    with pytest.raises(ValueError, match="unique"):
        writer.write(0, [1, 1], make_masks(0, 2))
    with pytest.raises(ValueError, match="frame_idx"):
        writer.write(-1, [1], make_masks(0, 1))
    with pytest.raises(ValueError, match="shape"):
        writer.write(0, [1], make_masks(0, 1)[0])
    writer.write(0, [4], make_masks(0, 1)[:, None])  # (N, 1, H, W) accepted
    assert (tmp_path / "004" / "00000.png").is_file()


# --------------------------------------------------------------------------- COCO RLE


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools decode on numpy 2
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_coco_rle_round_trip(tmp_path: Path, suffix: str) -> None:
    mask_api = pytest.importorskip("pycocotools.mask")
    path = tmp_path / f"masks{suffix}"
    written: dict[tuple[int, int], np.ndarray] = {}
    with CocoRleWriter(path, HEIGHT, WIDTH) as writer:
        assert read_coco_rle(path) == []
        for frame_idx in range(4):
            masks = make_masks(frame_idx)
            if frame_idx == 2:
                masks[1] = False  # an empty mask is still recorded
            writer.write(frame_idx, [3, 8], masks)
            written[(frame_idx, 3)], written[(frame_idx, 8)] = masks
            records = read_coco_rle(path)  # always complete after each frame
            assert len(records) == 2 * (frame_idx + 1)
            if suffix == ".json":
                json.loads(path.read_text())
    records = read_coco_rle(path)
    assert temp_files(tmp_path) == []
    for record in records:
        mask = written[(record["frame_idx"], record["obj_id"])]
        seg = record["segmentation"]
        assert seg["size"] == [HEIGHT, WIDTH] and isinstance(seg["counts"], str)
        decoded = mask_api.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), mask)
        assert record["area"] == int(mask.sum())
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert record["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        else:
            assert record["bbox"] == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"\(24, 31\)"):
        CocoRleWriter(tmp_path / "y.json", HEIGHT, WIDTH).write(0, [1], np.zeros((1, 5, 5), dtype=bool))


def test_jsonl_torn_last_line_is_ignored(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    path = tmp_path / "m.jsonl"
    with CocoRleWriter(path, HEIGHT, WIDTH) as writer:
        writer.write(0, [1], make_masks(0, 1))
    with path.open("a") as handle:
        handle.write('{"frame_idx": 1, "obj_id"')  # simulated crash mid-write
    assert [r["frame_idx"] for r in read_coco_rle(path)] == [0]


# --------------------------------------------------------------------------- overlays and video


def test_overlay_masks_and_colors() -> None:
    rgb = np.full((HEIGHT, WIDTH, 3), 100, dtype=np.uint8)
    masks = make_masks(0)
    out = overlay_masks(rgb, masks, [1, 2], alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.array_equal(out[~masks.any(0)], rgb[~masks.any(0)])
    only_first = masks[0] & ~masks[1]
    expected = np.rint(0.5 * 100 + 0.5 * np.array(object_color(1), dtype=np.float32))
    assert np.array_equal(out[only_first][0], expected.astype(np.uint8))
    assert object_color(1) == object_color(1) and object_color(1) != object_color(2)
    assert np.array_equal(rgb, np.full_like(rgb, 100))  # input untouched
    with pytest.raises(ValueError, match="frame"):
        overlay_masks(rgb[:10], masks, [1, 2])


def test_overlay_video_round_trip(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    frames = [np.full((HEIGHT, WIDTH, 3), 10 * t, dtype=np.uint8) for t in range(6)]
    path = tmp_path / "overlay.mp4"
    partial = tmp_path / "overlay.mp4.partial"
    with OverlayVideoWriter(path, 12, lambda i: frames[i]) as writer:
        for t in range(6):
            writer.write(t, [1, 2], make_masks(t))
            assert not path.exists()  # only <path>.partial exists until close()
    assert path.exists() and not partial.exists()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 6
    assert decoded[0].shape == (HEIGHT, WIDTH + 1, 3)  # odd width padded to even
    assert float(stream.average_rate) == pytest.approx(12.0)


def test_overlay_video_abort_and_errors(tmp_path: Path) -> None:
    pytest.importorskip("av")
    path = tmp_path / "fail.mp4"
    frames = np.zeros((3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="boom"):
        with OverlayVideoWriter(path, 5, lambda i: frames[i]) as writer:
            writer.write(0, [1], make_masks(0, 1))
            writer.write(1, [1], make_masks(1, 1))
            raise RuntimeError("boom")
    # the frames done before the failure survive as a complete, shorter video
    assert path.exists() and temp_files(tmp_path) == []
    import av

    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2
    with pytest.raises(ValueError, match="fps"):
        OverlayVideoWriter(path, 0, lambda i: frames[i])
    with pytest.raises(TypeError, match="frames"):
        OverlayVideoWriter(path, 5, "not frames")  # type: ignore[arg-type]
    empty = OverlayVideoWriter(tmp_path / "none.mp4", 5, lambda i: frames[i])
    empty.close()
    assert not (tmp_path / "none.mp4").exists()


# --------------------------------------------------------------------------- factory


class _FakeSource:
    video_height, video_width, fps = HEIGHT, WIDTH, 7.0

    def get_rgb(self, index: int) -> np.ndarray:
        return np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)


def test_make_writer(tmp_path: Path) -> None:
    assert WRITER_FORMATS == ("png", "palette", "rle", "mp4")
    assert isinstance(make_writer("png", tmp_path / "a"), PerObjectPngWriter)
    assert isinstance(make_writer("palette", tmp_path / "b"), PalettePngWriter)
    with pytest.raises(ValueError, match="png, palette, rle, mp4"):
        make_writer("gif", tmp_path / "c")
    with pytest.raises(ValueError, match="video_height"):
        make_writer("rle", tmp_path / "r.json")
    with pytest.raises(ValueError, match="frames"):
        make_writer("mp4", tmp_path / "v.mp4", fps=5)
    if pytest.importorskip("pycocotools"):
        rle = make_writer("rle", tmp_path / "r.jsonl", frames=_FakeSource())
        assert isinstance(rle, CocoRleWriter) and (rle.video_height, rle.video_width) == (HEIGHT, WIDTH)
        rle.close()
    video = make_writer("mp4", tmp_path / "v.mp4", frames=_FakeSource())
    assert isinstance(video, OverlayVideoWriter) and float(video.fps) == 7.0
    video.close()


# ---------------------------------------------------------------- fragmented MP4 and drawn prompts (issue 8)


def test_unfinished_mp4_decodes_up_to_its_last_fragment(tmp_path: Path) -> None:
    """A copy of the .partial file taken mid-run (what kill -9 leaves) plays its whole fragments."""
    import shutil

    import av

    writer = OverlayVideoWriter(tmp_path / "o.mp4", 25.0, lambda i: np.full((48, 64, 3), i % 255, np.uint8))
    for t in range(60):
        writer.write(t, [1], np.zeros((1, 48, 64), bool))
    shutil.copy(writer.partial_path, tmp_path / "killed.mp4")
    writer.close()
    with av.open(str(tmp_path / "killed.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 50  # fragments end at the keyframes of frames 25 and 50; the last 10 frames were in flight
    with av.open(str(tmp_path / "o.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 60


def test_prompts_are_drawn_on_their_frames_only() -> None:
    from samstream.io.overlay import BACKGROUND_COLOR, FOREGROUND_COLOR, PromptMarks, draw_prompts

    rgb = np.zeros((50, 80, 3), np.uint8)
    marks = PromptMarks(np.array([[10.0, 10.0], [60.0, 30.0]]), np.array([1, 0]), np.array([[20.0, 5.0, 50.0, 45.0]]),
                        (1, 1), (2,))
    drawn = draw_prompts(rgb, marks)
    assert tuple(drawn[10, 10]) == FOREGROUND_COLOR and tuple(drawn[30, 60]) == BACKGROUND_COLOR
    assert tuple(drawn[25, 20]) == object_color(2)  # the box outline in its object's color
    assert tuple(drawn[25, 35]) == (0, 0, 0) and not rgb.any()  # inside the box untouched; input not modified
    huge = PromptMarks(np.zeros((0, 2)), np.zeros((0,), int), np.array([[0.0, 0.0, 1e308, 1e308]]))
    assert draw_prompts(rgb, huge).shape == rgb.shape
