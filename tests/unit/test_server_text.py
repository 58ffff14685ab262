"""Text prompts in the HTTP API (``POST /v1/sessions/{id}/text``) through FastAPI's test client.

A fake proposer whose boxes are known stands in for the detector (handed to
``create_app(proposers=)``); the masks the server returns are compared with the predictor
given the same boxes directly. Also: labels in the session info and the exports, the object
limit, bad input, a detector that cannot be loaded offline, a real (tiny, random-weight)
Grounding DINO folder used through the endpoint, and ``samstream serve --detector``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from tiny import sample_image, write_tiny_model  # noqa: E402
from tiny_detectors import FakeProposer  # noqa: E402

from samstream.build import build_model  # noqa: E402
from samstream.io.rle import decode_coco_rle  # noqa: E402
from samstream.server import ServerSettings, create_app  # noqa: E402
from samstream.server.detectors import DetectorPool, with_thresholds  # noqa: E402
from samstream.video.predictor import VideoPredictor  # noqa: E402

RGB = sample_image("coffee")[::4, ::4].copy()  # 100 x 150
CAT, DOG = (10.0, 20.0, 70.0, 90.0, "cat", 0.4), (80.0, 5.0, 140.0, 60.0, "dog", 0.9)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    files = write_tiny_model(tmp_path_factory.mktemp("server_text_model"), seed=2)
    return build_model(files.config, files.checkpoint, for_video=True)


@pytest.fixture
def make_client(model, tmp_path):
    """A TestClient on a new app with ``proposers``; settings may be overridden."""
    opened = []

    def make(proposers=None, **overrides):
        settings = ServerSettings(work_dir=tmp_path / "work", **overrides)
        client = TestClient(create_app(settings, model=model, proposers=proposers))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def image_session(client, rgb: np.ndarray = RGB) -> str:
    response = client.post("/v1/sessions", content=png_bytes(rgb), headers={"Content-Type": "image/png"})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def decode(rle: dict) -> np.ndarray:
    return decode_coco_rle([rle])[0]


def test_each_box_becomes_a_labelled_object_with_the_box_prompts_mask(make_client, model):
    fake = FakeProposer([[CAT, DOG]])
    client = make_client({"grounding-dino": fake})
    sid = image_session(client)
    click = {"frame_index": 0, "obj_id": 1, "points": [[40, 50]], "point_labels": [1]}
    assert client.post(f"/v1/sessions/{sid}/prompts", json=click).status_code == 200

    response = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "Cat.  DOG ."})
    assert response.status_code == 200, response.text
    body = response.json()
    assert fake.calls == [("cat", "dog")]  # normalised before the detector sees them
    assert (body["detector"], body["phrases"], body["found"]) == ("grounding-dino", ["cat", "dog"], 2)
    # best detection first; new ids above the clicked object's
    assert [(o["obj_id"], o["label"], o["score"]) for o in body["added"]] == [(2, "dog", 0.9), (3, "cat", 0.4)]
    assert [o["box"] for o in body["added"]] == [list(DOG[:4]), list(CAT[:4])]
    by_id = {o["obj_id"]: decode(o["mask"]) for o in body["objects"]}
    assert sorted(by_id) == [1, 2, 3]

    # the same prompts given to the predictor directly give the same masks
    predictor = VideoPredictor(model)
    session = predictor.open_session(RGB[None])
    predictor.add_prompt(session, 0, 1, points=[[40, 50]], labels=[1])
    predictor.add_prompt(session, 0, 2, box=DOG[:4])
    want = predictor.add_prompt(session, 0, 3, box=CAT[:4]).result()
    for i, obj_id in enumerate(want.obj_ids):
        np.testing.assert_array_equal(by_id[obj_id], want.binary_masks()[i].numpy())

    info = client.get(f"/v1/sessions/{sid}").json()
    assert info["obj_ids"] == [1, 2, 3]
    assert info["labels"] == [
        {"obj_id": 2, "label": "dog", "score": 0.9, "frame_index": 0},
        {"obj_id": 3, "label": "cat", "score": 0.4, "frame_index": 0},
    ]
    assert info["prompts"] == [{"obj_id": o, "frame_indices": [0]} for o in (1, 2, 3)]
    # the objects are ordinary objects afterwards: a click refines one, removing it drops its label
    refine = {"frame_index": 0, "obj_id": 2, "points": [[100, 30]], "point_labels": [1], "box": list(DOG[:4])}
    assert client.post(f"/v1/sessions/{sid}/prompts", json=refine).status_code == 200
    assert [x["label"] for x in client.get(f"/v1/sessions/{sid}").json()["labels"]] == ["dog", "cat"]
    assert client.delete(f"/v1/sessions/{sid}/objects/3").status_code == 200
    assert [x["obj_id"] for x in client.get(f"/v1/sessions/{sid}").json()["labels"]] == [2]
    assert client.post(f"/v1/sessions/{sid}/reset").json()["labels"] == []


def test_masks_of_a_proposer_that_makes_masks_lie_inside_its_boxes(make_client):
    client = make_client({"grounding-dino": FakeProposer([[CAT, DOG]], with_masks=True)})
    sid = image_session(client)
    body = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cat. dog."}).json()
    masks = {o["obj_id"]: decode(o["mask"]) for o in body["objects"]}
    for added in body["added"]:
        x0, y0, x1, y1 = (int(v) for v in added["box"])
        box = np.zeros_like(masks[added["obj_id"]])
        box[y0:y1, x0:x1] = True
        mask = masks[added["obj_id"]]
        # the tiny config outputs a mask prompt as it is (resampled to the model's size and back)
        assert (mask & ~box).sum() <= 0.02 * box.sum()
        assert (mask & box).sum() / (mask | box).sum() > 0.9


def test_ids_the_object_limit_and_nothing_found(make_client):
    boxes = [(5.0 + 10 * i, 5.0, 30.0 + 10 * i, 40.0, "cup", 0.9 - 0.1 * i) for i in range(3)]
    fake = FakeProposer([boxes, []])
    client = make_client({"grounding-dino": fake}, max_objects=3)
    sid = image_session(client)
    assert client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 4, "box": [50, 50, 90, 90]}).status_code == 200
    # from first_obj_id 3 the lowest free ids are 3 and 5 (4 is taken); the third detection finds no room
    body = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cup", "first_obj_id": 3}).json()
    assert body["found"] == 3 and [(o["obj_id"], o["score"]) for o in body["added"]] == [(3, 0.9), (5, pytest.approx(0.8))]
    full = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cup"})
    assert full.status_code == 422 and "limit" in full.json()["detail"]

    other = image_session(client)
    empty = client.post(f"/v1/sessions/{other}/text", json={"frame_index": 0, "text": "cup"}).json()
    assert (empty["found"], empty["added"], empty["objects"]) == (0, [], [])
    assert client.get(f"/v1/sessions/{other}").json()["obj_ids"] == []


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"frame_index": 0, "text": " . "}, 422, "text: give at least one phrase"),
        ({"frame_index": 0, "text": ""}, 422, "text: give at least one phrase"),
        ({"frame_index": 1, "text": "cat"}, 422, "frame_index 1"),
        ({"frame_index": -1, "text": "cat"}, 422, "frame_index"),
        ({"frame_index": 0}, 422, "text"),
        ({"frame_index": 0, "text": "cat", "detector": "/etc"}, 422, "detector '/etc' is not one this server offers"),
        ({"frame_index": 0, "text": "cat", "detector": "someone/some-model"}, 422, "samstream serve --detector"),
        ({"frame_index": 0, "text": "cat", "box_threshold": 1.5}, 422, "box_threshold"),
        ({"frame_index": 0, "text": "cat", "text_threshold": 0.3}, 422, "text_threshold: detector 'fake' has no such threshold"),
        ({"frame_index": 0, "text": "cat", "first_obj_id": 0}, 422, "first_obj_id"),
        ({"frame_index": 0, "text": "cat", "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_text_requests_are_4xx_naming_the_field(make_client, body, status, fragment):
    fake = FakeProposer([[CAT]])
    client = make_client({"grounding-dino": fake})
    sid = image_session(client)
    response = client.post(f"/v1/sessions/{sid}/text", json=body)
    assert response.status_code == status
    assert fragment in json.dumps(response.json())
    assert fake.calls == []  # refused before the detector ran
    assert client.get(f"/v1/sessions/{sid}").json()["obj_ids"] == []


def test_unknown_session_is_404(make_client):
    client = make_client({"grounding-dino": FakeProposer([[CAT]])})
    assert client.post("/v1/sessions/" + "x" * 32 + "/text", json={"frame_index": 0, "text": "cat"}).status_code == 404


def test_a_request_picks_one_of_the_servers_detectors(make_client):
    default, other = FakeProposer([[CAT]]), FakeProposer([[DOG]])
    client = make_client({"grounding-dino": default, "mine": other})
    info = client.get("/v1/info").json()
    assert info["detector"] == "grounding-dino" and info["detectors"][0] == "grounding-dino"
    assert "/v1/sessions/{session_id}/text" in client.get("/openapi.json").json()["paths"]
    assert {"mine", "owlv2", "automatic"} <= set(info["detectors"])
    sid = image_session(client)
    body = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "dog", "detector": "mine"}).json()
    assert body["detector"] == "mine" and [o["label"] for o in body["added"]] == ["dog"]
    assert (len(default.calls), len(other.calls)) == (0, 1)


def test_a_detector_that_cannot_be_loaded_offline_is_a_clear_503(make_client, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    client = make_client()  # the default detector, grounding-dino, not in the (empty) cache
    sid = image_session(client)
    response = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cat"})
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "IDEA-Research/grounding-dino-tiny" in detail and "HF_HUB_OFFLINE" in detail
    assert str(cache / "models--IDEA-Research--grounding-dino-tiny") in detail
    # the server keeps serving, and the session is untouched
    click = {"frame_index": 0, "obj_id": 1, "box": [10, 10, 60, 60]}
    assert client.post(f"/v1/sessions/{sid}/prompts", json=click).status_code == 200
    assert client.get(f"/v1/sessions/{sid}").json()["labels"] == []


def test_labels_in_the_exports(make_client):
    client = make_client({"grounding-dino": FakeProposer([[(250.0, 30.0, 360.0, 190.0, "cyclist", 0.8)]])})
    sid = client.post("/v1/sessions/example").json()["session_id"]
    assert client.post(f"/v1/sessions/{sid}/prompts", json={"frame_index": 0, "obj_id": 1, "box": [0, 20, 200, 200]}).status_code == 200
    added = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cyclist"}).json()["added"]
    assert [(o["obj_id"], o["label"]) for o in added] == [(2, "cyclist")]
    with client.stream("POST", f"/v1/sessions/{sid}/propagate", json={"max_frame_num_to_track": 2}) as stream:
        assert [json.loads(line)["type"] for line in stream.iter_lines() if line][-1] == "end"

    coco = client.get(f"/v1/sessions/{sid}/export/coco").json()
    assert coco["categories"] == [{"id": 1, "name": "object"}, {"id": 2, "name": "cyclist"}]
    assert coco["objects"] == [{"obj_id": 1, "label": None}, {"obj_id": 2, "label": "cyclist"}]
    assert len(coco["annotations"]) == 2 * 3
    for a in coco["annotations"]:
        assert (a["category_id"], a["label"]) == ((2, "cyclist") if a["obj_id"] == 2 else (1, None))
    polygons = client.get(f"/v1/sessions/{sid}/export/polygons").json()
    assert {(a["obj_id"], a["label"]) for a in polygons["annotations"]} == {(1, None), (2, "cyclist")}


def test_a_tiny_grounding_dino_folder_through_the_endpoint(make_client, tiny_grounding_dino_dir):
    """A real transformers Grounding DINO (random weights) named by the server's --detector."""
    from samstream.detect import make_proposer
    from samstream.detect.registry import DetectorRequest

    client = make_client(detector=str(tiny_grounding_dino_dir), box_threshold=0.0, text_threshold=0.0, max_objects=4)
    assert client.get("/v1/info").json()["detector"] == str(tiny_grounding_dino_dir)
    sid = image_session(client)
    body = client.post(f"/v1/sessions/{sid}/text", json={"frame_index": 0, "text": "cat. red car."})
    assert body.status_code == 200, body.text
    body = body.json()
    direct = make_proposer(tiny_grounding_dino_dir, DetectorRequest(threshold=0.0, text_threshold=0.0)).propose(RGB, ("cat", "red car"))
    assert body["found"] == len(direct) == 10  # every query at threshold 0
    usable = [i for i, b in enumerate(direct.boxes) if b[2] > b[0] and b[3] > b[1]][:4]
    assert [o["label"] for o in body["added"]] == [direct.labels[i] for i in usable]
    np.testing.assert_allclose([o["box"] for o in body["added"]], direct.boxes[usable], atol=1e-4)
    assert {o["obj_id"] for o in body["objects"]} == {o["obj_id"] for o in body["added"]}
    # a request's thresholds apply to that request only (the loaded model is shared)
    strict = client.post(f"/v1/sessions/{image_session(client)}/text", json={"frame_index": 0, "text": "cat", "box_threshold": 1.0})
    assert strict.status_code == 200 and strict.json()["found"] == 0


# --------------------------------------------------------------------------- the parts


def test_the_mp4_overlay_writes_the_labels(tmp_path):
    """The same masks exported with and without a label: the labelled video differs only
    around the object's top-left corner, where the label is written."""
    from samstream.io.rle import encode_coco_rle
    from samstream.server.exports import VideoMeta, build_export
    from samstream.server.masks import ObjectMask
    from samstream.video.sources.video_file import VideoFileFrameSource

    h, w = 96, 160
    mask = np.zeros((h, w), dtype=bool)
    mask[40:90, 60:150] = True
    rle = encode_coco_rle(mask[None])[0]
    stored = {t: {1: ObjectMask(rle, int(mask.sum()), 1.0)} for t in range(2)}
    gray = np.full((h, w, 3), 90, dtype=np.uint8)

    class Frames:
        def get_rgb(self, t):
            return gray

        def close(self):
            pass

    meta = VideoMeta(w, h, 2, 10.0, "video")
    decoded = []
    for labels in ({}, {1: "cat"}):
        out = build_export("mp4", tmp_path, stored, [1], meta, Frames, labels=labels)
        source = VideoFileFrameSource(out.path, 128)
        decoded.append(source.get_rgb(0).astype(int))
        source.close()
    changed = np.abs(decoded[1] - decoded[0]).sum(axis=2) > 60
    assert changed.any()
    ys, xs = np.nonzero(changed)
    assert 20 <= ys.min() and ys.max() < 50 and 58 <= xs.min() and xs.max() < 120  # at the mask's top-left corner



def test_thresholds_for_one_request_leave_the_proposer_alone():
    class Thresholded(FakeProposer):
        threshold, text_threshold = 0.35, 0.25

    proposer = Thresholded([[CAT]])
    assert with_thresholds(proposer, None, None) is proposer
    changed = with_thresholds(proposer, 0.5, 0.1)
    assert (changed.threshold, changed.text_threshold) == (0.5, 0.1)
    assert (proposer.threshold, proposer.text_threshold) == (0.35, 0.25)
    assert changed.calls is proposer.calls  # a shallow copy: what it holds (the model) is shared
    with pytest.raises(ValueError, match="box_threshold"):
        with_thresholds(FakeProposer([[CAT]]), 0.5, None)


def test_the_pool_builds_a_detector_once(tiny_grounding_dino_dir):
    pool = DetectorPool(str(tiny_grounding_dino_dir), threshold=0.2)
    assert pool.choose(None) == str(tiny_grounding_dino_dir)
    first = pool.get(str(tiny_grounding_dino_dir))
    assert first.threshold == 0.2 and pool.get(str(tiny_grounding_dino_dir)) is first
    with pytest.raises(ValueError, match="detector"):
        pool.choose(str(tiny_grounding_dino_dir / "other"))


def test_serve_takes_a_detector(tmp_path, capsys, tiny_grounding_dino_dir):
    import argparse

    from samstream.cli import main
    from samstream.cli.serve import add_parser, settings_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--detector", str(tiny_grounding_dino_dir), "--box-threshold", "0.3"])
    settings = settings_from_args(args)
    assert (settings.detector, settings.box_threshold, settings.text_threshold) == (str(tiny_grounding_dino_dir), 0.3, None)
    assert settings_from_args(parser.parse_args(["serve"])).detector == "grounding-dino"

    config, weights = tmp_path / "model.yaml", tmp_path / "model.pt"
    config.write_text("model: {}\n")
    weights.write_bytes(b"")  # never read: the flags are refused first
    for extra, fragment in (
        (["--detector", str(tmp_path / "nothing")], "--detector"),
        (["--detector", str(config)], "not a model folder"),
        (["--box-threshold", "2"], "--box-threshold"),
    ):
        code = main(["serve", "--config", str(config), "--checkpoint", str(weights), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("samstream serve: error:") and fragment in err, err
