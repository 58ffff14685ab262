"""What the web-page tests share: a ``samstream serve`` process, a headless Chromium page, and
helpers to click on the video, take screenshots of it and read masks back from the API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def serve(tmp_path: Path, model_args: list[str]):
    """``samstream serve MODEL_ARGS`` on a free port; yields (base URL, work dir, stderr path).
    At shutdown no session folder may be left."""
    work = tmp_path / "work"
    port = free_port()
    log = tmp_path / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "samstream", "serve", *model_args, "--port", str(port), "--work-dir", str(work)]
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(f"{base}/v1/info")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"samstream serve did not start: {log.read_text()}")
                time.sleep(0.2)
        yield base, work, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert not list(work.glob("session-*")), "sessions left on disk after shutdown"


@contextmanager
def chromium_page():
    """A fresh page in headless Chromium; ``page.errors`` collects the page's script errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        try:
            yield page
        finally:
            browser.close()


def shots_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$SAMSTREAM_SCREENSHOTS`` when set, else under tmp_path."""
    folder = Path(os.environ.get("SAMSTREAM_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def viewer_shot(page, path: Path) -> np.ndarray:
    """Screenshot of the video viewer: [h, w, 3] int16."""
    page.locator("#viewer").screenshot(path=str(path))
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def decode(rle) -> np.ndarray:
    from samstream.io.rle import decode_coco_rle

    return decode_coco_rle([rle])[0]


def frame_masks(base: str, sid: str, frame: int) -> dict[int, np.ndarray]:
    """The server's masks on one frame: obj_id -> [H, W] bool."""
    objects = get_json(f"{base}/v1/sessions/{sid}/frames/{frame}/masks")["objects"]
    return {o["obj_id"]: decode(o["mask"]) for o in objects}


def to_screen(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A video-sized mask resampled (nearest) to a screenshot's [h, w]."""
    h, w = shape
    rows = (np.arange(h) + 0.5) * mask.shape[0] / h
    cols = (np.arange(w) + 0.5) * mask.shape[1] / w
    return mask[rows.astype(int).clip(0, mask.shape[0] - 1)][:, cols.astype(int).clip(0, mask.shape[1] - 1)]


def click(page, x: float, y: float, button: str = "left") -> None:
    """Click at video pixel (x, y) on the page's marks canvas."""
    box = page.locator("#marks-canvas").bounding_box()
    width = page.evaluate("window.samstream.info.width")
    scale = box["width"] / width
    page.mouse.click(box["x"] + x * scale, box["y"] + y * scale, button=button)
