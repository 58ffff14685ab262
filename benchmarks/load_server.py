"""Load test of ``samstream serve``: N concurrent sessions on loopback, a fixed set of requests each.

    python benchmarks/load_server.py [--sessions 20] [--rounds 5] [--track-frames 5]
                                     [--config YAML --checkpoint PT | --model NAME]

Starts a real server (``python -m samstream serve`` under uvicorn) on a free loopback port,
with the tiny test model of ``tests/tiny.py`` unless a model is given. Each of the N sessions
(one thread and one HTTP connection each) opens the bundled example video, then does
``--rounds`` rounds of: a click (prompt), the frame as JPEG, the frame's stored masks; then
one propagation of ``--track-frames`` frames (streamed), a COCO RLE export, and deletes its
session. Prints per-request latency percentiles (p50 / p95 / p99, by kind and overall), the
error count, and checks that the server ends with no open session and no session folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, work: Path, port: int) -> subprocess.Popen:
    if args.config is not None:
        model = ["--config", str(args.config), "--checkpoint", str(args.checkpoint)]
    elif args.model is not None:
        model = ["--model", args.model] + (["--checkpoint", str(args.checkpoint)] if args.checkpoint else [])
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from tiny import write_tiny_model

        files = write_tiny_model(work / "model", seed=2)
        model = files.cli_args()
    command = [sys.executable, "-m", "samstream", "serve", *model, "--port", str(port), "--work-dir", str(work / "sessions"),
               "--max-sessions", str(args.sessions + 4)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def call(self, kind: str, fn):
        started = time.perf_counter()
        try:
            response = fn()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            with self._lock:
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        with self._lock:
            self.latency[kind].append(elapsed)
            if response.status_code >= 400:
                self.errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
                return None
        return response


def one_session(base: str, index: int, args, rec: Recorder) -> None:
    with httpx.Client(base_url=base, timeout=300) as client:
        opened = rec.call("open example", lambda: client.post("/v1/sessions/example"))
        if opened is None:
            return
        sid = opened.json()["session_id"]
        width, height = opened.json()["width"], opened.json()["height"]
        rng = np.random.default_rng(index)
        for round_ in range(args.rounds):
            x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
            body = {"frame_index": 0, "obj_id": 1 + round_ % 3, "points": [[x, y]], "point_labels": [1]}
            rec.call("prompt", lambda: client.post(f"/v1/sessions/{sid}/prompts", json=body))
            rec.call("frame jpeg", lambda: client.get(f"/v1/sessions/{sid}/frames/{round_}"))
            rec.call("frame masks", lambda: client.get(f"/v1/sessions/{sid}/frames/0/masks"))

        def track():
            body = {"propagation_direction": "forward", "max_frame_num_to_track": args.track_frames - 1}
            with client.stream("POST", f"/v1/sessions/{sid}/propagate", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    return response
                lines = [json.loads(line) for line in response.iter_lines() if line]
            if not lines or lines[-1].get("status") != "done":
                raise RuntimeError(f"propagation did not finish: {lines[-1] if lines else response.status_code}")
            return response

        rec.call("propagate (streamed)", track)
        rec.call("export coco", lambda: client.get(f"/v1/sessions/{sid}/export/coco"))
        rec.call("delete", lambda: client.delete(f"/v1/sessions/{sid}"))


def percentiles(values: list[float]) -> str:
    ms = np.asarray(values) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"{len(ms):5d}  {p50:9.1f}  {p95:9.1f}  {p99:9.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of click + frame + masks per session")
    parser.add_argument("--track-frames", type=int, default=5, help="frames of the one propagation per session")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config", type=Path)
    which.add_argument("--model")
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="samstream-load-") as tmp:
        work = Path(tmp)
        port = free_port()
        server = start_server(args, work, port)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    info = httpx.get(f"{base}/v1/info", timeout=5).json()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print(server.stderr.read().decode(), file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            rec = Recorder()
            started = time.perf_counter()
            with ThreadPoolExecutor(args.sessions) as pool:
                list(pool.map(lambda i: one_session(base, i, args, rec), range(args.sessions)))
            wall = time.perf_counter() - started
            final = httpx.get(f"{base}/v1/info", timeout=30).json()
            folders = sorted(p.name for p in (work / "sessions").glob("session-*"))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

    requests = sum(len(v) for v in rec.latency.values())
    print(f"samstream serve load test: {args.sessions} concurrent sessions on loopback, model {info['model']!r} "
          f"({info['image_size']} px, {info['device']}), {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"per session: open the example, {args.rounds} x (click, frame JPEG, frame masks), "
          f"a {args.track_frames}-frame propagation, a COCO export, delete")
    print(f"{requests} requests in {wall:.1f} s ({requests / wall:.1f} requests/s)\n")
    print(f"{'request':22s} {'count':>5s}  {'p50 ms':>9s}  {'p95 ms':>9s}  {'p99 ms':>9s}")
    for kind, values in rec.latency.items():
        print(f"{kind:22s} {percentiles(values)}")
    print(f"{'all':22s} {percentiles([v for vs in rec.latency.values() for v in vs])}")
    print(f"\nerrors: {len(rec.errors)}")
    for error in rec.errors[:10]:
        print(f"  {error}")
    leaked = final["sessions_open"]
    print(f"sessions open at the end: {leaked}; session folders left: {len(folders)}")
    ok = not rec.errors and leaked == 0 and not folders
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
