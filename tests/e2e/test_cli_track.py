"""``samstream track`` end to end on a 6-frame clip made in the test, with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import moving_clip, write_jpeg_folder

from samstream.cli import main
from samstream.io.writers import read_coco_rle
from samstream.video.predictor import VideoPredictor

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 136, 320
FRAMES = 6
POINT = ["--point", "0:160,74.8"]  # object 1
BOX = ["--box", "0:16,27.2,112,122.4:2"]  # object 2


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A folder of FRAMES JPEGs, W x H."""
    return write_jpeg_folder(tmp_path_factory.mktemp("video"), moving_clip(FRAMES, H, W))


@pytest.fixture(scope="module")
def model_args(tiny_model_files) -> list[str]:
    return tiny_model_files.cli_args()


def run(video: Path, out: Path, model_args: list[str], *extra: str) -> int:
    return main(["track", str(video), "--output-dir", str(out), *model_args, *extra])


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files left in an output folder."""
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".partial")) or p.name.startswith(".")]


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        return np.array(img)


def png_masks(out: Path) -> dict[int, dict[int, np.ndarray]]:
    """SA-V layout -> {obj_id: {frame: bool mask}}, checking every file."""
    masks: dict[int, dict[int, np.ndarray]] = {}
    for obj_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for f in sorted(obj_dir.glob("*.png")):
            arr = read_png(f)
            assert arr.shape == (H, W) and arr.dtype == np.uint8, f
            assert set(np.unique(arr)) <= {0, 255}, f
            masks.setdefault(int(obj_dir.name), {})[int(f.stem)] = arr > 0
    return masks


@pytest.fixture(scope="module")
def png_run(video, model_args, tmp_path_factory) -> dict[int, dict[int, np.ndarray]]:
    out = tmp_path_factory.mktemp("png") / "out"
    assert run(video, out, model_args, *POINT, *BOX) == 0
    assert sorted(p.name for p in out.iterdir()) == ["001", "002"]
    for obj in ("001", "002"):
        assert sorted(p.name for p in (out / obj).iterdir()) == [f"{f:05d}.png" for f in range(FRAMES)]
    assert not leftovers(out)
    return png_masks(out)


# --------------------------------------------------------------------------- formats


def test_png_format(png_run):
    assert sorted(png_run) == [1, 2]
    assert all(sorted(frames) == list(range(FRAMES)) for frames in png_run.values())
    assert any(m.any() for m in png_run[1].values()) and any(m.any() for m in png_run[2].values())


def test_png_matches_the_predictor(png_run, video, tiny_model_files):
    """The CLI writes what the library computes (fill_hole_area=8 by default)."""
    from samstream.build import build_model
    from samstream.video.predictor import VideoPredictorOptions

    model = build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True)
    predictor = VideoPredictor(model, VideoPredictorOptions(fill_hole_area=8))
    session = predictor.open_session(str(video))
    predictor.add_prompt(session, 0, 1, points=[[160, 74.8]], labels=[1])
    predictor.add_prompt(session, 0, 2, box=[16, 27.2, 112, 122.4])
    for f, ids, logits in predictor.propagate(session, progress=False):
        for i, obj in enumerate(ids):
            np.testing.assert_array_equal(png_run[obj][f], (logits[i, 0] > 0).numpy(), err_msg=f"obj {obj} frame {f}")


def test_palette_format(png_run, video, model_args, tmp_path):
    out = tmp_path / "pal"
    assert run(video, out, model_args, *POINT, *BOX, "--format", "palette") == 0
    files = sorted(out.glob("*.png"))
    assert [p.name for p in files] == [f"{f:05d}.png" for f in range(FRAMES)]
    for f, path in enumerate(files):
        with Image.open(path) as img:
            assert img.mode == "P"
        labels = read_png(path)
        assert labels.shape == (H, W)
        assert set(np.unique(labels)) <= {0, 1, 2}
        # object ids as values; where objects overlap the larger id is on top
        want = np.zeros((H, W), dtype=np.uint8)
        want[png_run[1][f]] = 1
        want[png_run[2][f]] = 2
        np.testing.assert_array_equal(labels, want, err_msg=f"frame {f}")
    assert not leftovers(out)


def test_rle_format(png_run, video, model_args, tmp_path):
    from pycocotools import mask as mask_api

    out = tmp_path / "rle"
    assert run(video, out, model_args, *POINT, *BOX, "--format", "rle") == 0
    path = out / "masks.rle.jsonl"
    records = read_coco_rle(path)
    # every line is a complete JSON record
    assert len(path.read_text().splitlines()) == len(records) == 2 * FRAMES
    assert {(r["frame_idx"], r["obj_id"]) for r in records} == {(f, o) for f in range(FRAMES) for o in (1, 2)}
    for r in records:
        decoded = mask_api.decode({"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()})
        assert decoded.shape == (H, W)
        np.testing.assert_array_equal(decoded.astype(bool), png_run[r["obj_id"]][r["frame_idx"]])
        assert r["area"] == int(decoded.sum())
    assert not leftovers(out)
    json.dumps(records)  # plain JSON types


def test_mp4_format(video, model_args, tmp_path):
    import av

    out = tmp_path / "mp4"
    assert run(video, out, model_args, *POINT, *BOX, "--format", "mp4") == 0
    path = out / "overlay.mp4"
    assert path.is_file() and not leftovers(out)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == FRAMES
    assert frames[0].shape == (H, W, 3)


# --------------------------------------------------------------------------- modes and prompts


def test_stream_mode(png_run, video, model_args, tmp_path):
    out = tmp_path / "stream"
    assert run(video, out, model_args, *POINT, *BOX, "--stream") == 0
    masks = png_masks(out)
    assert sorted(masks) == [1, 2]
    assert all(sorted(frames) == list(range(FRAMES)) for frames in masks.values())
    # the prompted frame is the same in both modes (later frames differ only by the pointer
    # window: the whole clip offline, max_obj_ptrs live)
    for obj in (1, 2):
        np.testing.assert_array_equal(masks[obj][0], png_run[obj][0])
    assert not leftovers(out)


def test_stream_mode_prompt_on_a_later_frame(video, model_args, tmp_path):
    out = tmp_path / "late"
    assert run(video, out, model_args, "--point", "2:160,74.8", "--stream") == 0
    masks = png_masks(out)
    assert sorted(masks[1]) == list(range(2, FRAMES))  # nothing to write before the prompt


def test_reverse(video, model_args, tmp_path):
    out = tmp_path / "rev"
    assert run(video, out, model_args, "--point", f"{FRAMES - 1}:160,74.8", "--reverse") == 0
    assert sorted(png_masks(out)[1]) == list(range(FRAMES))
    out = tmp_path / "rev3"
    assert run(video, out, model_args, "--point", "3:160,74.8", "--reverse") == 0
    assert sorted(png_masks(out)[1]) == [0, 1, 2, 3]  # backwards from frame 3 only


def test_stream_with_reverse_is_not_silently_forward(video, model_args, tmp_path):
    out = tmp_path / "stream_rev"
    code = run(video, out, model_args, "--point", "3:160,74.8", "--stream", "--reverse")
    if code == 2:  # rejected up front: fine
        assert not out.exists()
    else:
        assert code == 0
        assert sorted(png_masks(out)[1]) == [0, 1, 2, 3]


def test_box_only(video, model_args, tmp_path):
    out = tmp_path / "box"
    assert run(video, out, model_args, "--box", "1:16,27.2,112,122.4:7") == 0
    masks = png_masks(out)
    assert sorted(masks) == [7]
    assert sorted(masks[7]) == list(range(1, FRAMES))  # tracking starts at the prompted frame


def test_mask_prompt_from_png(video, model_args, tmp_path):
    given = np.zeros((H, W), dtype=np.uint8)
    given[30:100, 60:200] = 255
    mask_png = tmp_path / "prompt.png"
    Image.fromarray(given).save(mask_png)
    out = tmp_path / "mask"
    assert run(video, out, model_args, "--mask", f"0:{mask_png}:3") == 0
    masks = png_masks(out)
    assert sorted(masks) == [3] and sorted(masks[3]) == list(range(FRAMES))
    got, want = masks[3][0], given > 0
    iou = (got & want).sum() / (got | want).sum()
    assert iou > 0.9, f"the mask prompt is the frame-0 output (IoU {iou:.3f})"


def test_multiple_clicks_and_background_label(video, model_args, tmp_path):
    out = tmp_path / "clicks"
    args = ["--point", "0:160,74.8:4", "--point", "0:224,40.8:4:0"]
    assert run(video, out, model_args, *args) == 0
    assert sorted(png_masks(out)) == [4]


# --------------------------------------------------------------------------- errors


def test_frame_out_of_range_writes_nothing(video, model_args, tmp_path, capsys):
    out = tmp_path / "never"
    assert run(video, out, model_args, "--point", f"{FRAMES}:10,10") == 2
    err = capsys.readouterr().err
    assert str(FRAMES) in err and "frame" in err
    assert not out.exists()
    assert run(video, out, model_args, *POINT, "--box", "99:1,1,20,20:2") == 2
    assert not out.exists()


def test_missing_video(model_args, tmp_path, capsys):
    out = tmp_path / "o"
    assert run(tmp_path / "no_such_video.mp4", out, model_args, *POINT) == 2
    assert "no_such_video.mp4" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--point", "0:abc"),
        ("--point", "160,74"),  # no frame
        ("--point", "x:160,74"),
        ("--point", "0:160"),
        ("--point", "0:160,74:1:5"),  # label must be 0 or 1
        ("--point", "0:160,74:1:1:9"),
        ("--point=-1:160,74", None),  # (with "=": argparse would take "-1:..." for a flag)
        ("--point", "0:nan,74"),
        ("--box", "0:50,50,10,10"),  # x1 < x0
        ("--box", "0:1,2,3"),
    ],
)
def test_bad_prompt_syntax(video, model_args, tmp_path, capsys, flag, value):
    out = tmp_path / "o"
    assert run(video, out, model_args, *([flag] if value is None else [flag, value])) == 2
    assert flag.split("=")[0] in capsys.readouterr().err
    assert not out.exists()


def test_other_bad_inputs(video, model_args, tmp_path, capsys):
    out = tmp_path / "o"
    assert run(video, out, model_args) == 2  # no prompt at all
    assert run(video, out, model_args, "--point", "0:5000,10") == 2  # click outside the video
    assert "outside" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(small)
    assert run(video, out, model_args, "--mask", f"0:{small}") == 2  # mask of the wrong size
    assert run(video, out, model_args, "--mask", f"0:{tmp_path / 'none.png'}") == 2
    assert run(video, out, model_args, *POINT, "--format", "mp4", "--reverse") == 2
    assert not out.exists()


# --------------------------------------------------------------------------- crash safety


def _crash_on_frame(monkeypatch, bad_frame: int, exc: Exception):
    original = VideoPredictor.track_frame

    def failing(self, session, frame_idx, reverse):
        if frame_idx == bad_frame:
            raise exc
        return original(self, session, frame_idx, reverse)

    monkeypatch.setattr(VideoPredictor, "track_frame", failing)


@pytest.mark.parametrize("stream", [False, True], ids=["offline", "stream"])
def test_crash_mid_video_leaves_complete_pngs(png_run, video, model_args, tmp_path, monkeypatch, stream, capsys):
    _crash_on_frame(monkeypatch, 3, RuntimeError("simulated crash"))
    out = tmp_path / "crash"
    assert run(video, out, model_args, *POINT, *BOX, *(["--stream"] if stream else [])) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: simulated crash" in err and "--debug" in err and "Traceback" not in err
    masks = png_masks(out)  # decodes every file
    assert sorted(masks) == [1, 2]
    for obj in (1, 2):
        assert sorted(masks[obj]) == [0, 1, 2]
    if not stream:
        for obj in (1, 2):
            for f in range(3):
                np.testing.assert_array_equal(masks[obj][f], png_run[obj][f])
    assert not leftovers(out)


def test_runtime_error_mid_video_is_reported(video, model_args, tmp_path, monkeypatch, capsys):
    _crash_on_frame(monkeypatch, 3, ValueError("simulated decode failure"))
    out = tmp_path / "crash"
    assert run(video, out, model_args, *POINT, "--format", "rle") == 1
    err = capsys.readouterr().err
    assert "simulated decode failure" in err and "3 frames" in err
    records = read_coco_rle(out / "masks.rle.jsonl")
    assert sorted(r["frame_idx"] for r in records) == [0, 1, 2]
    assert not leftovers(out)


def test_interrupted_mp4_keeps_the_frames_done(video, model_args, tmp_path, monkeypatch, capsys):
    """Ctrl-C on the 4th frame: the overlay video is finished with the 3 frames done."""
    import av

    _crash_on_frame(monkeypatch, 3, KeyboardInterrupt())
    out = tmp_path / "crash"
    assert run(video, out, model_args, *POINT, "--format", "mp4") == 130
    assert "interrupted" in capsys.readouterr().err
    with av.open(str(out / "overlay.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3
    assert not leftovers(out)
