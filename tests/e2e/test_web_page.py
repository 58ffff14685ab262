"""The web page in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against a real ``samstream serve`` process on loopback with the tiny model.

Load the page, open the example video, click on the cyclist, check from screenshots that the
mask the server computed is drawn where it should be (and nowhere else), track, correct on a
later frame (only the frames after it are re-tracked), undo and redo, and download the COCO
RLE and MP4 exports. Screenshots go to ``$SAMSTREAM_SCREENSHOTS`` when set (else tmp_path).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tiny import write_tiny_model
from web_helpers import chromium_page, click, decode, free_port, get_json, needs_chromium, serve, shots_dir, to_screen, viewer_shot

CLICK = (300, 80)  # on the cyclist in the example's first frame (video pixels)

pytestmark = [needs_chromium]
pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (pip install playwright)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``samstream serve`` with the tiny model (seed 2), shared by this module's tests."""
    tmp_path = tmp_path_factory.mktemp("serve")
    files = write_tiny_model(tmp_path / "model", seed=2)
    with serve(tmp_path, files.cli_args()) as running:
        yield running


@pytest.fixture
def page():
    with chromium_page() as page:
        yield page


def test_click_track_correct_undo_download(server, page, tmp_path):
    base, work, log = server
    assert "this machine only" in log.read_text()  # binds to localhost by default, and says so
    shots = shots_dir(tmp_path)

    page.goto(base + "/")
    assert "KEYBOARD" in page.inner_text("aside") and "Ctrl+Z" in page.inner_text("#shortcuts")  # shortcuts shown
    page.click("#example")
    page.wait_for_function("window.samstream.info !== null && window.samstream.masks.has(0)")
    page.wait_for_timeout(200)
    sid = page.evaluate("window.samstream.sid")
    before = viewer_shot(page, shots / "1_example_opened.png")

    # a click on the cyclist: the mask appears at once, drawn from the server's RLE
    click(page, *CLICK)
    page.wait_for_function("window.samstream.masks.get(0) && window.samstream.masks.get(0).size > 0")
    page.wait_for_timeout(200)
    after = viewer_shot(page, shots / "2_clicked.png")
    objects = get_json(f"{base}/v1/sessions/{sid}/frames/0/masks")["objects"]
    assert [o["obj_id"] for o in objects] == [1]
    mask = decode(objects[0]["mask"])
    assert mask[CLICK[1], CLICK[0]], "the tiny model (seed 2) puts the click inside its mask"
    changed = np.abs(after - before).sum(axis=2) > 30
    on_screen = to_screen(mask, changed.shape)
    ys, xs = np.nonzero(on_screen)
    cy, cx = CLICK[1] * changed.shape[0] / mask.shape[0], CLICK[0] * changed.shape[1] / mask.shape[1]
    near = np.hypot(ys - cy, xs - cx) < 40
    assert changed[ys[near], xs[near]].mean() > 0.8  # mask pixels around the click are tinted
    marker = np.hypot(*np.mgrid[: changed.shape[0], : changed.shape[1]] - np.array([cy, cx])[:, None, None]) < 12
    assert changed[~on_screen & ~marker].mean() < 0.02  # and nothing outside the mask (but the click's dot)

    # track: the whole video, with progress
    page.click("#track")
    page.wait_for_function("window.samstream.lastTrack && window.samstream.tracking === null", timeout=120_000)
    assert page.evaluate("window.samstream.lastTrack.status") == "done"
    assert "frame 27 of 27" in page.inner_text("#progress-text")
    assert "frames/s" in page.inner_text("#progress-text")
    viewer_shot(page, shots / "3_tracked_last_frame.png")
    page.locator("#viewer-column").screenshot(path=str(shots / "3b_timeline.png"))

    # "next problem frame" goes to the first frame after this one the server flags
    page.evaluate("showFrame(0)")
    page.wait_for_function("window.samstream.frame === 0")
    problems = [p for p in get_json(f"{base}/v1/sessions/{sid}/problems")["problems"] if p["frame_index"] > 0]
    page.keyboard.press("p")
    if problems:
        page.wait_for_function(f"window.samstream.frame === {problems[0]['frame_index']}")
        assert page.inner_text("#status").startswith(f"frame {problems[0]['frame_index']}:")
    else:
        page.wait_for_function("document.getElementById('status').textContent.includes('no problem frame')")

    # a correction on frame 20 (a negative click inside the mask there) re-tracks frames 20..26 only
    page.keyboard.press("Home")  # no-op key: focus stays on the page
    page.evaluate("showFrame(20)")
    page.wait_for_function("window.samstream.frame === 20")
    frame20 = decode(next(o for o in get_json(f"{base}/v1/sessions/{sid}/frames/20/masks")["objects"] if o["obj_id"] == 1)["mask"])
    ys, xs = np.nonzero(frame20)
    inside = (int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    click(page, *inside, button="right")
    page.wait_for_function("window.samstream.prompts.has('1:20') && window.samstream.busy === 0")
    info = get_json(f"{base}/v1/sessions/{sid}")
    assert info["prompts"] == [{"obj_id": 1, "frame_indices": [0, 20]}]
    viewer_shot(page, shots / "4_corrected_frame_20.png")
    page.keyboard.press("t")
    page.wait_for_function("window.samstream.tracking === null && window.samstream.lastTrack.total === 7", timeout=120_000)
    assert page.evaluate("window.samstream.lastTrack.status") == "done"
    assert "frame 7 of 7" in page.inner_text("#progress-text")

    # undo removes the correction (on the server too); redo brings it back
    page.keyboard.press("Control+z")
    page.wait_for_function("!window.samstream.prompts.has('1:20') && window.samstream.busy === 0")
    assert get_json(f"{base}/v1/sessions/{sid}")["prompts"] == [{"obj_id": 1, "frame_indices": [0]}]
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function("window.samstream.prompts.has('1:20') && window.samstream.busy === 0")
    assert get_json(f"{base}/v1/sessions/{sid}")["prompts"] == [{"obj_id": 1, "frame_indices": [0, 20]}]

    # downloads: COCO RLE JSON and the MP4 overlay
    with page.expect_download() as download:
        page.click("a[data-format=coco]")
    coco = json.loads(Path(download.value.path()).read_text())
    assert coco["video"]["num_frames"] == 27
    assert sorted({a["frame_index"] for a in coco["annotations"]}) == list(range(27))
    stored = get_json(f"{base}/v1/sessions/{sid}/frames/5/masks")["objects"][0]["mask"]
    assert next(a for a in coco["annotations"] if a["frame_index"] == 5)["segmentation"] == stored
    with page.expect_download() as download:
        page.click("a[data-format=mp4]")
    video = tmp_path / "overlay.mp4"
    download.value.save_as(video)
    from samstream.video.sources.video_file import VideoFileFrameSource

    source = VideoFileFrameSource(video, 128)
    assert (source.num_frames, source.fps) == (27, 25.0)
    source.close()
    assert page.errors == []


def test_image_upload_and_everything(server, page, tmp_path):
    base, _, _ = server
    shots = shots_dir(tmp_path)
    from tiny import sample_image

    image = tmp_path / "coffee.png"
    Image.fromarray(sample_image("coffee")[::2, ::2].copy()).save(image)
    page.goto(base + "/")
    page.set_input_files("#file", str(image))
    page.wait_for_function("window.samstream.info !== null && window.samstream.info.kind === 'image'")
    assert page.locator("#tracking").is_hidden() and page.locator("#playback").is_hidden()
    # a box drawn by dragging
    box = page.locator("#marks-canvas").bounding_box()
    scale = box["width"] / 300
    page.mouse.move(box["x"] + 60 * scale, box["y"] + 40 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + 150 * scale, box["y"] + 120 * scale, steps=5)
    page.mouse.up()
    page.wait_for_function("window.samstream.masks.get(0) && window.samstream.masks.get(0).size > 0")
    prompt = page.evaluate("window.samstream.prompts.get('1:0')")
    assert prompt["points"] == [] and prompt["box"][0] == pytest.approx(60, abs=2)
    # segment everything, then add the proposals as objects
    page.keyboard.press("e")
    page.wait_for_function("window.samstream.proposals !== null", timeout=120_000)
    count = page.evaluate("window.samstream.proposals.length")
    viewer_shot(page, shots / "5_everything.png")
    if count:
        page.click("#adopt-all")
        page.wait_for_function(f"window.samstream.objects.size === {count + 1}", timeout=120_000)
    sid = page.evaluate("window.samstream.sid")
    assert len(get_json(f"{base}/v1/sessions/{sid}")["obj_ids"]) == 1 + count
    # many objects: 20 more, each with its own colour and a row (name, show/hide, delete)
    for _ in range(20):
        page.keyboard.press("n")
    rows = page.locator("#objects li")
    assert rows.count() == count + 21
    colours = page.evaluate("[...window.samstream.objects.values()].map(o => o.color.join(','))")
    assert len(set(colours)) == len(colours)
    assert rows.nth(0).locator("input[type=checkbox]").count() == 1 and rows.nth(0).locator("button.delete").count() == 1
    assert page.errors == []


def test_cancel_tracking_from_the_page(server, page, tmp_path):
    base, _, _ = server
    from tiny import moving_clip, write_mp4

    clip = moving_clip(60, 96, 160)
    frames = np.concatenate([clip, clip[::-1], clip, clip[::-1]])  # 240 frames
    video = write_mp4(tmp_path / "long.mp4", frames)
    page.goto(base + "/")
    page.set_input_files("#file", str(video))
    page.wait_for_function("window.samstream.info !== null && window.samstream.info.num_frames === 240")
    click(page, 80, 50)
    page.wait_for_function("window.samstream.masks.get(0) && window.samstream.masks.get(0).size > 0 && window.samstream.busy === 0")
    page.click("#track")
    page.wait_for_function("document.getElementById('progress-text').textContent.includes('of 240')", timeout=60_000)
    page.keyboard.press("Escape")
    page.wait_for_function("window.samstream.tracking === null", timeout=60_000)
    end = page.evaluate("window.samstream.lastTrack")
    assert end["status"] == "cancelled" and end["done"] < 240
    assert page.inner_text("#progress-text").startswith("cancelled")
    assert page.locator("#cancel").is_disabled() and page.locator("#track").is_enabled()
    assert page.errors == []


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    """The app with a fake detector whose boxes are known (``create_app(proposers=)``), served
    by uvicorn in a thread on a free port; yields (base URL, the fake proposer). At most 3
    objects per session, so the third phrase meets the limit."""
    import threading

    import uvicorn
    from tiny_detectors import FakeProposer

    from samstream.build import build_model
    from samstream.server import ServerSettings, create_app

    tmp_path = tmp_path_factory.mktemp("serve_text")
    files = write_tiny_model(tmp_path / "model", seed=2)
    model = build_model(files.config, files.checkpoint, for_video=True)
    fake = FakeProposer([[TEXT_BOXES["cyclist"], TEXT_BOXES["car"]]])
    app = create_app(ServerSettings(work_dir=tmp_path / "work", max_objects=3), model=model, proposers={"grounding-dino": fake})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        server.should_exit = True
        thread.join(30)
    assert not list((tmp_path / "work").glob("session-*")), "sessions left on disk after shutdown"


# the fake detector's boxes on the example's first frame (x0, y0, x1, y1, label, score)
TEXT_BOXES = {"cyclist": (255.0, 10.0, 365.0, 204.0, "cyclist", 0.8), "car": (0.0, 20.0, 215.0, 204.0, "car", 0.6)}


def test_text_box_adds_labelled_objects(text_server, page, tmp_path):
    base, fake = text_server
    shots = shots_dir(tmp_path)
    page.goto(base + "/")
    page.wait_for_function("document.getElementById('text-hint').textContent.includes('grounding-dino')")
    page.click("#example")
    page.wait_for_function("window.samstream.info !== null && window.samstream.masks.has(0)")
    page.wait_for_timeout(200)
    sid = page.evaluate("window.samstream.sid")
    before = viewer_shot(page, shots / "6_text_before.png")

    # an empty phrase is refused in the page's error area, without a request
    page.click("#text-add")
    assert "type what to find" in page.inner_text("#status") and "error" in page.get_attribute("#status", "class")
    assert fake.calls == []

    # type the phrases, press Enter: one object per detection, named by its phrase, with its mask
    page.fill("#text-prompt", "Cyclist. Car.")
    page.press("#text-prompt", "Enter")
    page.wait_for_function("window.samstream.objects.size === 3 && window.samstream.busy === 0")
    page.wait_for_timeout(200)
    after = viewer_shot(page, shots / "7_text_added.png")
    assert fake.calls[-1] == ("cyclist", "car")
    names = page.locator("#objects li input[type=text]")
    assert [names.nth(i).input_value() for i in range(names.count())] == ["object 1", "cyclist", "car"]
    assert "found for “cyclist. car” on frame 0" in page.inner_text("#status")
    info = get_json(f"{base}/v1/sessions/{sid}")
    assert [(x["obj_id"], x["label"]) for x in info["labels"]] == [(2, "cyclist"), (3, "car")]
    colours = page.evaluate("[...window.samstream.objects.values()].map(o => o.color.join(','))")
    assert len(set(colours)) == 3

    # the cyclist's mask (from the server) is drawn: tinted inside, and nothing changes outside
    # the two masks but the dashed outlines of the two box prompts
    objects = {o["obj_id"]: decode(o["mask"]) for o in get_json(f"{base}/v1/sessions/{sid}/frames/0/masks")["objects"]}
    assert sorted(objects) == [2, 3] and objects[2].any()
    changed = np.abs(after - before).sum(axis=2) > 30
    cyclist_only = to_screen(objects[2] & ~objects[3], changed.shape)
    assert changed[cyclist_only].mean() > 0.8
    outlines = np.zeros(objects[2].shape, dtype=bool)
    for x0, y0, x1, y1, *_ in TEXT_BOXES.values():
        inner = np.zeros_like(outlines)
        inner[int(y0) + 4 : int(y1) - 4, int(x0) + 4 : int(x1) - 4] = True
        outer = np.zeros_like(outlines)
        outer[max(int(y0) - 4, 0) : int(y1) + 4, max(int(x0) - 4, 0) : int(x1) + 4] = True
        outlines |= outer & ~inner
    drawn = to_screen(objects[2] | objects[3] | outlines, changed.shape)
    near_drawn = drawn.copy()  # the browser's smoothing blends a pixel or two at every mask edge
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            near_drawn |= np.roll(drawn, (dy, dx), axis=(0, 1))
    assert changed[~near_drawn].mean() < 0.02

    # the limit (3 objects) leaves room for one more; then the server's refusal shows as an error
    page.fill("#text-prompt", "cyclist")
    page.press("#text-prompt", "Enter")
    page.wait_for_function("window.samstream.objects.size === 4 && window.samstream.busy === 0")
    assert "1 more not added" in page.inner_text("#status")
    page.press("#text-prompt", "Enter")
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "limit" in page.inner_text("#status")
    page.screenshot(path=str(shots / "8_text_page.png"))
    assert page.errors == []
