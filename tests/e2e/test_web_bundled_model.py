"""The web page with the model samstream ships (``samstream serve`` with no model flag, as in the
Quick start), in a real headless Chromium: it segments and tracks.

Held-out synthetic clips (seeds the training never drew), written to MP4 files, are uploaded
through the page; a click on each object gives its mask, and tracking keeps it. The masks the
server sends back are scored against the generator's exact masks, and the screenshot of the
first frame must show them tinted. An untrained model scores about 0.05 here; the bundled one
about 0.7 on the first frame and 0.5 over the clip.
"""

from __future__ import annotations

import numpy as np
import pytest

from tiny import write_mp4
from web_helpers import chromium_page, click, frame_masks, get_json, needs_chromium, serve, shots_dir, to_screen, viewer_shot

pytestmark = [needs_chromium]
pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (pip install playwright)")

SEEDS = (30_000_000, 30_000_001, 30_000_002)  # the training draws seeds below 5 x 10^6
FRAMES = 12
FIRST_FRAME_J = 0.5  # mean J of the clicked masks on frame 0
TRACKED_J = 0.35  # mean J over every frame of every object


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``samstream serve`` with its default model, the bundled samstream-synthetic."""
    tmp_path = tmp_path_factory.mktemp("serve_bundled")
    with serve(tmp_path, []) as running:
        yield running


def _clip(seed: int):
    from samstream.training.synthetic import SyntheticVideoConfig, make_video

    config = SyntheticVideoConfig(
        num_frames=FRAMES, num_objects=(2, 2), num_distractors=(0, 0), prob_leave_and_return=0.0, object_size=(0.25, 0.4)
    )
    return make_video(seed, config)


def test_bundled_model_segments_and_tracks_in_the_page(server, tmp_path):
    from scipy import ndimage

    from samstream.eval.metrics import jaccard

    base, _, _ = server
    info = get_json(f"{base}/v1/info")
    assert info["model"] == "samstream-synthetic" and "synthetic clips only" in info["model_note"]
    shots = shots_dir(tmp_path)
    first, tracked = [], []
    with chromium_page() as page:
        page.goto(base + "/")
        # the page says which model answers, and what it is good for
        page.wait_for_function("document.getElementById('model-info').textContent.includes('samstream-synthetic')")
        assert "official checkpoint" in page.inner_text("#model-info")
        for seed in SEEDS:
            clip = _clip(seed)
            video = tmp_path / f"clip-{seed}.mp4"
            write_mp4(video, clip.frames, crf=12)
            page.set_input_files("#file", str(video))
            page.wait_for_function(f"window.samstream.info !== null && window.samstream.info.num_frames === {FRAMES}")
            page.wait_for_function("window.samstream.masks.has(0)")
            page.wait_for_timeout(200)
            sid = page.evaluate("window.samstream.sid")
            before = viewer_shot(page, shots / f"bundled_{seed}_0_opened.png")

            # one click per object, at its deepest point; a new object ("n") before each but the first
            for n in range(clip.masks.shape[1]):
                if n:
                    page.keyboard.press("n")
                dist = ndimage.distance_transform_edt(np.pad(clip.masks[0, n], 1))[1:-1, 1:-1]
                y, x = np.unravel_index(int(dist.argmax()), dist.shape)
                click(page, float(x), float(y))
                page.wait_for_function(
                    f"window.samstream.masks.get(0) && window.samstream.masks.get(0).size === {n + 1} && window.samstream.busy === 0"
                )
            page.wait_for_timeout(200)
            after = viewer_shot(page, shots / f"bundled_{seed}_1_clicked.png")
            masks = frame_masks(base, sid, 0)
            assert sorted(masks) == [1, 2]
            first += [float(jaccard(clip.masks[0, n], masks[n + 1])) for n in range(2)]

            # the masks are drawn: tinted inside (away from the click dots)
            changed = np.abs(after - before).sum(axis=2) > 30
            union = to_screen(masks[1] | masks[2], changed.shape)
            assert changed[union].mean() > 0.8

            page.click("#track")
            page.wait_for_function("window.samstream.lastTrack && window.samstream.tracking === null", timeout=120_000)
            assert page.evaluate("window.samstream.lastTrack.status") == "done"
            viewer_shot(page, shots / f"bundled_{seed}_2_tracked_last.png")
            for t in range(FRAMES):
                masks = frame_masks(base, sid, t)
                empty = np.zeros(clip.masks.shape[2:], dtype=bool)
                tracked += [float(jaccard(clip.masks[t, n], masks.get(n + 1, empty))) for n in range(2)]
        assert page.errors == []
    assert np.mean(first) >= FIRST_FRAME_J, f"frame-0 J per object: {np.round(first, 2)}"
    assert np.mean(tracked) >= TRACKED_J, f"mean J over frames: {np.mean(tracked):.2f}"
