"""The HTTP API (samstream.server) through FastAPI's test client, on the tiny model.

Masks the server returns are compared with the predictors called directly on the same input,
so these tests check that the server passes prompts and results through unchanged; they also
cover every endpoint, bad uploads, limits, expiry, isolation between sessions and cancellation.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from tiny import moving_clip, sample_image, write_mp4, write_tiny_model  # noqa: E402

from samstream.build import build_model  # noqa: E402
from samstream.image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator  # noqa: E402
from samstream.io.rle import decode_coco_rle  # noqa: E402
from samstream.server import ServerSettings, create_app, example_video  # noqa: E402
from samstream.video.predictor import VideoPredictor  # noqa: E402
from samstream.video.sources.video_file import VideoFileFrameSource  # noqa: E402

EXAMPLE_FRAMES, EXAMPLE_W, EXAMPLE_H = 27, 480, 204
CLICK = [300.0, 80.0]  # on the cyclist in the example's first frame


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("server_model"), seed=2)


@pytest.fixture(scope="module")
def model(model_files):
    return build_model(model_files.config, model_files.checkpoint, for_video=True)


@pytest.fixture
def make_client(model, tmp_path):
    """Open a TestClient on a new app; settings may be overridden; work_dir is tmp_path/work."""
    opened = []

    def make(**overrides):
        settings = ServerSettings(work_dir=tmp_path / "work", **overrides)
        client = TestClient(create_app(settings, model=model))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, data: bytes, content_type: str):
    return client.post("/v1/sessions", content=data, headers={"Content-Type": content_type})


def decode(rle: dict) -> np.ndarray:
    return decode_coco_rle([rle])[0]


def example_session(client) -> str:
    response = client.post("/v1/sessions/example")
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def read_stream(client, session_id: str, body: dict) -> list[dict]:
    with client.stream("POST", f"/v1/sessions/{session_id}/propagate", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def session_folders(tmp_path: Path) -> list[Path]:
    work = tmp_path / "work"
    return sorted(work.glob("session-*")) if work.exists() else []


# --------------------------------------------------------------------------- page, info, docs


def test_page_info_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/rle.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    info = client.get("/v1/info").json()
    assert info["image_size"] == 128 and info["limits"]["max_sessions"] == 32
    assert info["export_formats"] == ["sav", "davis", "coco", "polygons", "mp4"]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/sessions", "/v1/sessions/{session_id}/prompts", "/v1/sessions/{session_id}/propagate",
                 "/v1/sessions/{session_id}/export/{fmt}", "/v1/sessions/{session_id}/everything"):
        assert path in paths


def test_app_builds_its_model_from_settings(model_files, tmp_path):
    settings = ServerSettings(model=model_files.config, checkpoint=model_files.checkpoint, work_dir=tmp_path / "w")
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/info").json()
        assert info["image_size"] == 128 and info["model_note"] == ""  # no note for a model given by its files
        assert example_session(client)


def test_info_notes_what_the_bundled_model_is_good_for(tmp_path):
    from samstream.bundled import BUNDLED

    with TestClient(create_app(ServerSettings(work_dir=tmp_path / "w"))) as client:  # the default model, built here
        info = client.get("/v1/info").json()
    assert info["model"] == "samstream-synthetic" and info["model_note"] == BUNDLED["samstream-synthetic"].note
    assert "official checkpoint" in info["model_note"]


# --------------------------------------------------------------------------- images: prompts and masks


def test_image_prompt_gives_the_predictors_mask(client, model):
    rgb = sample_image("coffee")[::4, ::4].copy()  # 100 x 150
    response = upload(client, png_bytes(rgb), "image/png")
    assert response.status_code == 201, response.text
    info = response.json()
    assert (info["kind"], info["width"], info["height"], info["num_frames"], info["fps"]) == ("image", 150, 100, 1, None)
    sid = info["session_id"]
    body = {"frame_index": 0, "obj_id": 1, "points": [[70, 40], [20, 80]], "point_labels": [1, 0]}
    got = client.post(f"/v1/sessions/{sid}/prompts", json=body)
    assert got.status_code == 200, got.text
    objects = got.json()["objects"]
    assert [o["obj_id"] for o in objects] == [1]
    mask = decode(objects[0]["mask"])

    predictor = VideoPredictor(model)
    session = predictor.open_session(rgb[None])
    want = predictor.add_prompt(session, 0, 1, points=[[70, 40], [20, 80]], labels=[1, 0]).masks[0, 0] > 0
    np.testing.assert_array_equal(mask, want.numpy())
    assert objects[0]["area"] == int(want.sum())
    assert objects[0]["score"] == pytest.approx(predictor.object_score_logits(session, 1, 0), abs=1e-5)

    # the stored masks of the frame are what the prompt returned
    stored = client.get(f"/v1/sessions/{sid}/frames/0/masks").json()["objects"]
    assert stored[0]["mask"] == objects[0]["mask"]

    # the same clicks in normalized coordinates (on a new session of the same image) give the same mask
    other = upload(client, png_bytes(rgb), "image/png").json()["session_id"]
    norm = dict(body, points=[[70 / 150, 40 / 100], [20 / 150, 80 / 100]], coords="normalized")
    again = client.post(f"/v1/sessions/{other}/prompts", json=norm).json()["objects"][0]
    np.testing.assert_array_equal(decode(again["mask"]), mask)

    # a new prompt on the same frame refines the object's mask there (the predictor gets its
    # previous mask as input), exactly as when the predictor is called directly
    refine = dict(body, points=[[70, 40]], point_labels=[1])
    refined = client.post(f"/v1/sessions/{sid}/prompts", json=refine).json()["objects"][0]
    want = predictor.add_prompt(session, 0, 1, points=[[70, 40]], labels=[1]).masks[0, 0] > 0
    np.testing.assert_array_equal(decode(refined["mask"]), want.numpy())


def test_box_mask_clear_remove_and_reset(client):
    sid = upload(client, png_bytes(sample_image("astronaut")[::4, ::4].copy()), "image/png").json()["session_id"]
    boxed = client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 3, "box": [20, 20, 90, 100]})
    assert boxed.status_code == 200 and boxed.json()["objects"][0]["obj_id"] == 3

    square = np.zeros((128, 128), dtype=bool)
    square[30:70, 40:90] = True
    from samstream.io.rle import encode_coco_rle

    rle = encode_coco_rle(square[None])[0]
    masked = client.post(f"/v1/sessions/{sid}/masks", json={"frame_index": 0, "obj_id": 5, "mask": rle})
    assert masked.status_code == 200, masked.text
    by_id = {o["obj_id"]: o for o in masked.json()["objects"]}
    assert sorted(by_id) == [3, 5]
    # the tiny config outputs a mask prompt as it is (use_mask_input_as_output_without_sam)
    iou = (decode(by_id[5]["mask"]) & square).sum() / (decode(by_id[5]["mask"]) | square).sum()
    assert iou > 0.9
    wrong = dict(rle, size=[10, 10])
    bad = client.post(f"/v1/sessions/{sid}/masks", json={"frame_index": 0, "obj_id": 6, "mask": wrong})
    assert bad.status_code == 422 and "mask.size" in bad.json()["detail"]

    assert client.get(f"/v1/sessions/{sid}").json()["obj_ids"] == [3, 5]
    removed = client.delete(f"/v1/sessions/{sid}/objects/3")
    assert removed.status_code == 200 and removed.json()["obj_ids"] == [5]
    assert [o["obj_id"] for o in removed.json()["refreshed"][0]["objects"]] == [5]
    assert client.delete(f"/v1/sessions/{sid}/objects/3").status_code == 404

    cleared = client.post(f"/v1/sessions/{sid}/prompts/clear", json={"frame_index": 0, "obj_id": 5}).json()
    assert cleared["object_removed"] is True and cleared["frame"]["objects"] == []
    assert client.get(f"/v1/sessions/{sid}").json()["obj_ids"] == []

    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [[50, 50]], "point_labels": [1]})
    reset = client.post(f"/v1/sessions/{sid}/reset").json()
    assert reset["obj_ids"] == [] and reset["frames_with_masks"] == 0
    assert client.get(f"/v1/sessions/{sid}/frames/0/masks").json()["objects"] == []


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"frame_index": 0, "obj_id": 1}, "give points"),
        ({"frame_index": 0, "obj_id": 1, "points": [[5, 5]]}, "point_labels"),
        ({"frame_index": 0, "obj_id": 1, "points": [[5, 5]], "point_labels": [1, 0]}, "point_labels has 2"),
        ({"frame_index": 3, "obj_id": 1, "points": [[5, 5]], "point_labels": [1]}, "frame_index 3"),
        ({"frame_index": 0, "obj_id": 1, "points": [[5, 5]], "point_labels": [1], "coords": "inches"}, "coords"),
        ({"frame_index": 0, "obj_id": 1, "points": [[5, 5]], "point_labels": [1], "colour": 1}, "colour"),
        ({"frame_index": 0, "obj_id": -1, "points": [[5, 5]], "point_labels": [1]}, "obj_id"),
        ({"frame_index": 0, "obj_id": 1, "points": [[5, 5]], "point_labels": [7]}, "labels"),
    ],
)
def test_bad_prompts_are_422_naming_the_problem(client, body, fragment):
    sid = upload(client, png_bytes(sample_image("coffee")[::8, ::8].copy()), "image/png").json()["session_id"]
    response = client.post(f"/v1/sessions/{sid}/prompts", json=body)
    assert response.status_code == 422
    assert fragment in json.dumps(response.json())


def test_frame_jpeg(client):
    sid = example_session(client)
    response = client.get(f"/v1/sessions/{sid}/frames/5")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    jpeg = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
    want = VideoFileFrameSource(example_video(), 128).get_rgb(5).astype(int)
    assert jpeg.shape == want.shape and np.abs(jpeg - want).mean() < 4  # JPEG quality 90
    assert client.get(f"/v1/sessions/{sid}/frames/27").status_code == 422


# --------------------------------------------------------------------------- video: propagation


def test_propagation_streams_the_predictors_masks(client, model):
    sid = example_session(client)
    info = client.get(f"/v1/sessions/{sid}").json()
    assert (info["kind"], info["num_frames"], info["fps"], info["width"], info["height"]) == ("video", 27, 25.0, 480, 204)
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [CLICK], "point_labels": [1]})
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 2, "box": [0, 20, 200, 200]})
    events = read_stream(client, sid, {"propagation_direction": "forward"})
    frames, end = events[:-1], events[-1]
    assert [e["frame_index"] for e in frames] == list(range(EXAMPLE_FRAMES))
    assert [e["progress"] for e in frames] == [f"frame {k} of 27" for k in range(1, 28)]
    assert end["type"] == "end" and end["status"] == "done" and end["done"] == end["total"] == 27
    assert all(e["fps"] > 0 for e in frames)

    predictor = VideoPredictor(model)
    session = predictor.open_session(str(example_video()))
    predictor.add_prompt(session, 0, 1, points=[CLICK], labels=[1])
    predictor.add_prompt(session, 0, 2, box=[0, 20, 200, 200])
    for event, result in zip(frames, predictor.propagate(session, progress=False)):
        masks = result.binary_masks().numpy()
        got = {o["obj_id"]: decode(o["mask"]) for o in event["objects"]}
        for i, obj_id in enumerate(result.obj_ids):
            np.testing.assert_array_equal(got[obj_id], masks[i], err_msg=f"frame {result.frame_idx} object {obj_id}")

    stored = client.get(f"/v1/sessions/{sid}/frames/13/masks").json()["objects"]
    assert [o["mask"] for o in stored] == [o["mask"] for o in frames[13]["objects"]]
    timeline = client.get(f"/v1/sessions/{sid}/timeline").json()
    assert [o["obj_id"] for o in timeline["objects"]] == [1, 2]
    assert timeline["objects"][0]["areas"] == [next(o["area"] for o in e["objects"] if o["obj_id"] == 1) for e in frames]
    problems = client.get(f"/v1/sessions/{sid}/problems").json()["problems"]
    assert all(p["kind"] in ("vanished", "score_drop", "area_jump") for p in problems)


def test_serve_memory_strategy_tracks_with_it(make_client, model):
    client = make_client(memory="multipath")
    assert client.get("/v1/info").json()["memory"] == "multipath"
    sid = example_session(client)
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [CLICK], "point_labels": [1]})
    events = read_stream(client, sid, {"propagation_direction": "forward", "max_frame_num_to_track": 5})
    frames = events[:-1]
    assert [e["frame_index"] for e in frames] == list(range(6))

    predictor = VideoPredictor(model, memory="multipath")
    session = predictor.open_session(str(example_video()))
    predictor.add_prompt(session, 0, 1, points=[CLICK], labels=[1])
    for event, result in zip(frames, predictor.propagate(session, max_frames=5, progress=False)):
        got = decode(event["objects"][0]["mask"])
        np.testing.assert_array_equal(got, result.binary_masks().numpy()[0], err_msg=f"frame {result.frame_idx}")
    assert make_client().get("/v1/info").json()["memory"] == "default"


@pytest.mark.parametrize(
    "body, frames",
    [
        ({"propagation_direction": "backward", "start_frame_index": 6}, [6, 5, 4, 3, 2, 1, 0]),
        ({"propagation_direction": "forward", "start_frame_index": 6, "max_frame_num_to_track": 3}, [6, 7, 8, 9]),
        ({"propagation_direction": "both", "start_frame_index": 24, "max_frame_num_to_track": 2}, [24, 25, 26, 24, 23, 22]),
    ],
)
def test_propagation_directions_and_limits(client, body, frames):
    sid = example_session(client)
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": body["start_frame_index"], "obj_id": 1, "points": [CLICK], "point_labels": [1]})
    events = read_stream(client, sid, body)
    assert [e["frame_index"] for e in events[:-1]] == frames
    assert events[-1]["total"] == len(frames) and events[-1]["status"] == "done"


def test_propagation_refusals(client):
    sid = example_session(client)
    response = client.post(f"/v1/sessions/{sid}/propagate", json={})
    assert response.status_code == 422 and "no object" in response.json()["detail"]
    image = upload(client, png_bytes(sample_image("coffee")[::8, ::8].copy()), "image/png").json()["session_id"]
    assert client.post(f"/v1/sessions/{image}/propagate", json={}).status_code == 422
    bad = client.post(f"/v1/sessions/{sid}/propagate", json={"propagation_direction": "sideways"})
    assert bad.status_code == 422


def test_streaming_mode_for_long_videos(make_client):
    client = make_client(full_memory_frames=5)
    sid = example_session(client)
    assert client.get(f"/v1/sessions/{sid}").json()["streaming"] is True
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [CLICK], "point_labels": [1]})
    events = read_stream(client, sid, {})
    assert events[-1]["status"] == "done" and events[-1]["done"] == 27


def test_cancel_returns_at_once_and_stops_the_propagation(client, tmp_path):
    clip = moving_clip(60, 96, 160)
    path = write_mp4(tmp_path / "long.mp4", np.concatenate([clip, clip[::-1], clip]))  # 180 frames
    sid = upload(client, path.read_bytes(), "video/mp4").json()["session_id"]
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [[80, 50]], "point_labels": [1]})
    state = client.app.state.server
    with client.stream("POST", f"/v1/sessions/{sid}/propagate", json={}) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))
        assert first["type"] == "frame" and first["total"] == 180
        # a prompt while tracking is refused, not queued
        busy = client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 5, "obj_id": 1, "points": [[80, 50]], "point_labels": [1]})
        assert busy.status_code == 409
        # hold the model worker with a job that waits: the cancel must not wait behind it
        release = threading.Event()
        blocker = state.worker.submit(lambda: release.wait(30))
        started = time.monotonic()
        cancel = client.post(f"/v1/sessions/{sid}/propagate/cancel")
        elapsed = time.monotonic() - started
        release.set()
        blocker.result(10)
        assert cancel.status_code == 200 and cancel.json() == {"cancelled": True}
        assert elapsed < 5.0  # the worker was blocked for up to 30 s
        rest = [json.loads(line) for line in lines if line]
    end = rest[-1]
    assert end["type"] == "end" and end["status"] == "cancelled"
    assert end["done"] < 180 and end["done"] == 1 + len(rest) - 1
    assert client.get(f"/v1/sessions/{sid}").json()["propagating"] is False
    assert client.post(f"/v1/sessions/{sid}/propagate/cancel").json() == {"cancelled": False}


def test_a_client_that_goes_away_cancels_its_propagation(client, tmp_path):
    clip = moving_clip(60, 96, 160)
    path = write_mp4(tmp_path / "long.mp4", np.concatenate([clip, clip[::-1], clip]))  # 180 frames
    sid = upload(client, path.read_bytes(), "video/mp4").json()["session_id"]
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [[80, 50]], "point_labels": [1]})
    with client.stream("POST", f"/v1/sessions/{sid}/propagate", json={}) as response:
        assert json.loads(next(response.iter_lines()))["type"] == "frame"
    # the stream was closed after one line: the propagation stops instead of running on
    deadline = time.monotonic() + 30
    while client.get(f"/v1/sessions/{sid}").json()["propagating"] and time.monotonic() < deadline:
        time.sleep(0.05)
    info = client.get(f"/v1/sessions/{sid}").json()
    assert info["propagating"] is False and info["frames_with_masks"] < 180


# --------------------------------------------------------------------------- segment everything


def test_everything_matches_the_generator(client, model):
    sid = example_session(client)
    body = {"frame_index": 3, "points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    response = client.post(f"/v1/sessions/{sid}/everything", json=body)
    assert response.status_code == 200, response.text
    masks = response.json()["masks"]
    config = AutomaticMaskConfig(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, output_mode="coco_rle")
    want = AutomaticMaskGenerator(model, config).generate(VideoFileFrameSource(example_video(), 128).get_rgb(3))
    assert len(masks) == len(want) > 0
    assert [m["mask"]["counts"] for m in masks] == [w.segmentation["counts"] for w in want]
    assert all(m["coords"] == "pixels" and m["mask"]["size"] == [EXAMPLE_H, EXAMPLE_W] for m in masks)
    assert client.get(f"/v1/sessions/{sid}").json()["obj_ids"] == []  # proposals only


# --------------------------------------------------------------------------- exports


def test_every_export_format(client):
    sid = example_session(client)
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "points": [CLICK], "point_labels": [1]})
    client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 4, "box": [0, 20, 200, 200]})
    read_stream(client, sid, {})
    stored = {
        t: {o["obj_id"]: decode(o["mask"]) for o in client.get(f"/v1/sessions/{sid}/frames/{t}/masks").json()["objects"]}
        for t in range(EXAMPLE_FRAMES)
    }

    sav = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/sessions/{sid}/export/sav").content))
    assert len(sav.namelist()) == 2 * EXAMPLE_FRAMES
    png = np.asarray(Image.open(sav.open("004/00011.png")))
    np.testing.assert_array_equal(png > 0, stored[11][4])

    davis = zipfile.ZipFile(io.BytesIO(client.get(f"/v1/sessions/{sid}/export/davis").content))
    assert sorted(davis.namelist()) == [f"{t:05d}.png" for t in range(EXAMPLE_FRAMES)]
    labels = Image.open(davis.open("00020.png"))
    assert labels.mode == "P"
    labels = np.asarray(labels)
    np.testing.assert_array_equal(labels == 4, stored[20][4])  # the higher id wins where masks overlap
    np.testing.assert_array_equal(labels == 1, stored[20][1] & ~stored[20][4])

    coco = client.get(f"/v1/sessions/{sid}/export/coco").json()
    assert coco["video"] == {"width": 480, "height": 204, "num_frames": 27, "fps": 25.0}
    assert len(coco["annotations"]) == 2 * EXAMPLE_FRAMES
    first = coco["annotations"][0]
    np.testing.assert_array_equal(decode(first["segmentation"]), stored[first["frame_index"]][first["obj_id"]])

    polygons = client.get(f"/v1/sessions/{sid}/export/polygons").json()
    record = next(a for a in polygons["annotations"] if a["frame_index"] == 9 and a["obj_id"] == 4)
    canvas = Image.new("1", (EXAMPLE_W, EXAMPLE_H))
    for polygon in record["polygons"]:
        ImageDraw.Draw(canvas).polygon(polygon, fill=1)  # outlines filled (holes would be filled too)
    drawn, want = np.asarray(canvas), stored[9][4]
    assert (drawn & want).sum() / max(1, (drawn | want).sum()) > 0.8

    response = client.get(f"/v1/sessions/{sid}/export/mp4")
    assert response.headers["content-type"] == "video/mp4"
    video_path = Path(client.app.state.server.root) / "check.mp4"
    video_path.write_bytes(response.content)
    video = VideoFileFrameSource(video_path, 128)
    assert (video.num_frames, video.fps, video.video_width, video.video_height) == (27, 25.0, 480, 204)
    video.close()
    video_path.unlink()

    assert client.get(f"/v1/sessions/{sid}/export/gif").status_code == 422
    image = upload(client, png_bytes(sample_image("coffee")[::8, ::8].copy()), "image/png").json()["session_id"]
    refused = client.get(f"/v1/sessions/{image}/export/mp4")
    assert refused.status_code == 422 and "video" in refused.json()["detail"]
    assert client.get(f"/v1/sessions/{image}/export/coco").status_code == 200


# --------------------------------------------------------------------------- bad uploads


def _truncated_png() -> bytes:
    data = png_bytes(sample_image("coffee")[::2, ::2].copy())
    return data[: len(data) // 2]


def _truncated_mp4() -> bytes:
    data = example_video().read_bytes()
    return data[: int(len(data) * 0.6)]


@pytest.mark.parametrize(
    "data, content_type, status, fragment",
    [
        (b"", "image/png", 400, "empty"),
        (b"", "video/mp4", 400, "empty"),
        (b"certainly not a picture" * 20, "image/png", 400, "not a readable image"),
        (b"certainly not a video" * 20, "video/mp4", 400, "not a readable video"),
        (_truncated_png(), "image/png", 400, "truncated"),
        (_truncated_mp4(), "video/mp4", 400, "truncated"),
        (b"hello", "text/plain", 415, "unsupported Content-Type"),
        (b"hello", "multipart/form-data; boundary=x", 415, "multipart"),
        (b"hello", "", 415, "Content-Type"),
    ],
)
def test_bad_uploads_are_4xx_and_the_server_keeps_serving(client, tmp_path, data, content_type, status, fragment):
    response = client.post("/v1/sessions", content=data, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert str(tmp_path) not in response.json()["detail"]  # no server path in messages
    assert session_folders(tmp_path) == []
    assert client.get("/v1/info").status_code == 200
    assert client.post("/v1/sessions/example").status_code == 201


def test_upload_size_resolution_and_duration_limits(make_client, tmp_path):
    client = make_client(max_upload_bytes=8000, max_pixels=64 * 64, max_duration_s=0.5)
    small = png_bytes(sample_image("coffee")[::10, ::10].copy())  # 60 x 40
    assert len(small) < 8000
    assert upload(client, small, "image/png").status_code == 201
    big = png_bytes(np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8))
    declared = upload(client, big, "image/png")
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"\x00" * 1000  # 10 kB

    streamed = client.post("/v1/sessions", content=chunks(), headers={"Content-Type": "image/png"})
    assert streamed.status_code == 413
    wide = png_bytes(np.zeros((10, 500, 3), dtype=np.uint8))
    resolution = upload(client, wide, "image/png")
    assert resolution.status_code == 422 and "4096" in resolution.json()["detail"]

    client2 = make_client(max_duration_s=0.5)
    long = client2.post("/v1/sessions", content=example_video().read_bytes(), headers={"Content-Type": "video/mp4"})
    assert long.status_code == 422 and "1.1 s" in long.json()["detail"]
    assert len(session_folders(tmp_path)) == 1  # only the accepted image
    assert client2.get("/v1/info").status_code == 200


# --------------------------------------------------------------------------- isolation, limits, expiry


def test_two_sessions_from_two_threads_do_not_see_each_other(client):
    ids = [example_session(client), example_session(client)]
    assert ids[0] != ids[1] and min(len(i) for i in ids) >= 32  # secrets.token_urlsafe(24)
    own = {ids[0]: [1, 2, 3], ids[1]: [7, 8]}
    errors = []

    def work(sid):
        try:
            for round_ in range(3):
                for obj_id in own[sid]:
                    x = 60 + 40 * obj_id + round_
                    r = client.post(f"/v1/sessions/{sid}/prompts",
                                    json={"frame_index": 2, "obj_id": obj_id, "points": [[x, 100]], "point_labels": [1]})
                    assert r.status_code == 200, r.text
                    assert {o["obj_id"] for o in r.json()["objects"]} <= set(own[sid])
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for sid in ids:
        assert client.get(f"/v1/sessions/{sid}").json()["obj_ids"] == own[sid]
        assert [o["obj_id"] for o in client.get(f"/v1/sessions/{sid}/frames/2/masks").json()["objects"]] == own[sid]
    assert client.get("/v1/sessions/" + "x" * 32).status_code == 404


def test_session_and_object_limits(make_client, tmp_path):
    client = make_client(max_sessions=2, max_objects=2)
    a, b = example_session(client), example_session(client)
    refused = client.post("/v1/sessions/example")
    assert refused.status_code == 429 and "too many sessions" in refused.json()["detail"]
    assert client.delete(f"/v1/sessions/{b}").status_code == 204
    assert client.get(f"/v1/sessions/{b}").status_code == 404
    assert client.delete(f"/v1/sessions/{b}").status_code == 404
    example_session(client)
    for obj_id in (1, 2):
        assert client.post(f"/v1/sessions/{a}/prompts", json={"frame_index": 0, "obj_id": obj_id, "box": [10, 10, 90, 90]}).status_code == 200
    third = client.post(f"/v1/sessions/{a}/prompts", json={"frame_index": 0, "obj_id": 3, "box": [10, 10, 90, 90]})
    assert third.status_code == 422 and "limit" in third.json()["detail"]
    assert len(session_folders(tmp_path)) == 2


def test_idle_sessions_expire_with_their_files(make_client, tmp_path):
    client = make_client(idle_timeout_s=0.3)
    sid = example_session(client)
    assert len(session_folders(tmp_path)) == 1
    deadline = time.monotonic() + 10
    while session_folders(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_folders(tmp_path) == []
    assert client.get(f"/v1/sessions/{sid}").status_code == 404


def test_shutdown_removes_every_session_folder(model, tmp_path):
    with TestClient(create_app(ServerSettings(work_dir=tmp_path / "work"), model=model)) as client:
        example_session(client)
        upload(client, png_bytes(sample_image("coffee")[::8, ::8].copy()), "image/png")
        assert len(session_folders(tmp_path)) == 2
    assert session_folders(tmp_path) == []


def test_busy_worker_refuses_with_503(make_client):
    client = make_client(queue_size=1)
    sid = upload(client, png_bytes(sample_image("coffee")[::8, ::8].copy()), "image/png").json()["session_id"]
    worker = client.app.state.server.worker
    release = threading.Event()
    running = worker.submit(lambda: release.wait(30))
    try:
        deadline = time.monotonic() + 5
        while worker.pending() != 0 and time.monotonic() < deadline:  # the blocking job is running
            time.sleep(0.01)
        waiting = worker.submit(lambda: None)  # fills the one place in the queue
        response = client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "box": [5, 5, 40, 40]})
        assert response.status_code == 503 and "busy" in response.json()["detail"]
    finally:
        release.set()
    running.result(10), waiting.result(10)
    assert client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "box": [5, 5, 40, 40]}).status_code == 200


def test_scores_of_prompted_frames_are_reported(model):
    """The presence logit of a frame just prompted (before any tracking) is available."""
    predictor = VideoPredictor(model)
    session = predictor.open_session(moving_clip(3, 96, 160))
    predictor.add_prompt(session, 1, 1, points=[[80, 50]], labels=[1])
    score = predictor.object_score_logits(session, 1, 1)
    assert score is not None and np.isfinite(score)
    assert predictor.object_score_logits(session, 1, 0) is None
    torch.testing.assert_close(
        torch.tensor(score), session.objects[1].pending_cond[1].object_score_logits.reshape(()).float(), rtol=0, atol=0
    )
