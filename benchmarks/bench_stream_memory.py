"""Peak memory of ``samstream track --stream`` against video length: is it flat?

A synthetic video (a shape moving over a textured, slowly panning background; 320x240,
25 fps, H.264 or MPEG-4 with PyAV) is made at each length asked for (default 300 and
3,000 frames) and cached in ``--cache`` (default /tmp/samstream-bench). For each length the
command line is run as its own process::

    samstream track VIDEO --stream --point 0:X,Y --format rle --output-dir DIR <model flags>

with one click on the shape in frame 0, and its peak resident memory is measured twice:
by polling ``/proc/<pid>/status`` every ``--poll`` seconds (VmHWM, the high-water mark, at
the last sample before exit: "peak RSS"; VmRSS gives the memory over time, printed at
10 %, 50 % and 100 % of the run, so slow growth shows even when it is small next to the
peak), and as ``ru_maxrss`` from ``os.wait4`` on that child alone. The latter includes the
process's exit, where torch's libraries add a constant ~0.1 GiB after the last atexit
handler (a bare ``import torch`` process shows it too), so it reads higher by about that. The goal: the peak of the longest
video within 1.2x of the shortest. For contrast the non-streaming mode
(``propagate_in_video`` over a file, no ``--stream``) is run on the shortest video.

Models (``--model``):
  tiny     sam2.1_hiera_tiny at 1024 px with random (seeded, perturbed) weights saved to
           ``<cache>/sam2.1_hiera_tiny_random_seed<seed>.pt`` and passed with
           ``--model sam2.1_hiera_tiny --checkpoint``; add ``--bf16`` to run it under autocast.
  fixture  the parity fixture (``/work/shared/fixtures/parity/model.yaml`` + ``model.pt``):
           a small SAM 2.1-style model at 256 px, fast enough for thousands of frames on CPU.
  auto     (default) time the tiny model on a short clip first; use it if every run
           together is projected to fit in ``--budget-min`` minutes, else the fixture model.

Example::

    python benchmarks/bench_stream_memory.py --json /tmp/bench_stream_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(os.environ.get("SAMSTREAM_BENCH_CACHE", "/tmp/samstream-bench"))
FIXTURE = Path(os.environ.get("SAMSTREAM_PARITY_FIXTURE", "/work/shared/fixtures/parity"))
WIDTH, HEIGHT, FPS = 320, 240, 25

# --------------------------------------------------------------------------- the synthetic video


def shape_center(t: int) -> tuple[float, float]:
    """Centre (x, y) of the moving shape on frame ``t`` (a slow Lissajous path inside the frame)."""
    x = WIDTH / 2 + 0.30 * WIDTH * np.sin(2 * np.pi * t / 240.0)
    y = HEIGHT / 2 + 0.25 * HEIGHT * np.sin(2 * np.pi * t / 170.0 + 0.7)
    return float(x), float(y)


def make_video(path: Path, frames: int) -> Path:
    """Write the synthetic clip (cached: an existing file with the right frame count is reused)."""
    import av

    if path.is_file():
        try:
            with av.open(str(path)) as c:
                if c.streams.video[0].frames == frames:
                    return path
        except Exception:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    # a texture twice the frame size, panned slowly: blurred noise + stripes + a gradient
    th, tw = 2 * HEIGHT, 2 * WIDTH
    noise = rng.normal(0, 1, (th // 8, tw // 8, 3))
    noise = np.kron(noise, np.ones((8, 8, 1)))
    yy, xx = np.mgrid[0:th, 0:tw]
    texture = (
        110
        + 35 * noise
        + 30 * np.sin(xx / 9.0)[..., None] * np.array([1.0, 0.6, 0.2])
        + 25 * np.cos((xx + 2 * yy) / 31.0)[..., None] * np.array([0.2, 0.7, 1.0])
        + 40 * (yy / th)[..., None]
    )
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    fy, fx = np.mgrid[0:HEIGHT, 0:WIDTH]
    partial = path.with_name(path.name + ".partial.mp4")
    with av.open(str(partial), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": "veryfast", "g": "50"}
        else:
            stream.bit_rate = 1_000_000
        for t in range(frames):
            ox = int((WIDTH / 2) * (1 + np.sin(t / 400.0)))
            oy = int((HEIGHT / 2) * (1 + np.cos(t / 550.0)))
            img = texture[oy : oy + HEIGHT, ox : ox + WIDTH].copy()
            cx, cy = shape_center(t)
            inside = ((fx - cx) / 38.0) ** 2 + ((fy - cy) / 26.0) ** 2 < 1.0
            img[inside] = (235, 60 + (t % 50), 40)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- models


def random_tiny_checkpoint(cache: Path, seed: int) -> Path:
    """sam2.1_hiera_tiny with seeded random weights (every parameter perturbed), as a checkpoint file."""
    path = cache / f"sam2.1_hiera_tiny_random_seed{seed}.pt"
    if path.is_file():
        return path
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_image import perturb_

    from samstream.build import build_model

    torch.manual_seed(seed)
    model = build_model("sam2.1_hiera_tiny", None, device="cpu", for_video=True)
    perturb_(model, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"model": model.state_dict()}, tmp)
    tmp.replace(path)
    return path


def model_flags(kind: str, cache: Path, seed: int) -> list[str]:
    if kind == "fixture":
        return ["--config", str(FIXTURE / "model.yaml"), "--checkpoint", str(FIXTURE / "model.pt")]
    if kind == "tiny":
        return ["--model", "sam2.1_hiera_tiny", "--checkpoint", str(random_tiny_checkpoint(cache, seed))]
    raise ValueError(kind)


def samstream_command() -> list[str]:
    script = Path(sys.executable).parent / "samstream"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "samstream.cli"]


# --------------------------------------------------------------------------- measuring one run


def _vm_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB: resident memory now, and its high-water mark so far."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if len(values) != 2:
        return None
    return values["VmRSS"], values["VmHWM"]


def run_cli(cmd: list[str], log_path: Path, poll: float) -> dict:
    """Run ``cmd``; its peak RSS (ru_maxrss of this child alone, via wait4) and an RSS timeline."""
    env = dict(os.environ, TQDM_MININTERVAL="5")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        samples: list[tuple[float, int]] = []
        hwm: list[tuple[float, int]] = []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            vm = _vm_kib(proc.pid)
            if vm is not None:
                now = time.perf_counter() - t0
                samples.append((now, vm[0]))
                if not hwm or vm[1] > hwm[-1][1]:
                    hwm.append((now, vm[1]))
            time.sleep(poll)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")

    def rss_at(fraction: float) -> float:
        target = fraction * wall
        before = [s for s in samples if s[0] <= target]
        return (before[-1][1] if before else samples[0][1]) / 1024.0 if samples else float("nan")

    return {
        "wall_s": wall,
        # VmHWM at the last sample before the child exited: the peak while it ran
        "peak_rss_mib": (hwm[-1][1] if hwm else 0) / 1024.0,
        # the kernel's figure (Linux: KiB); it also counts the exit of the process, where
        # torch's libraries add a constant ~0.1 GiB after the last atexit handler (even for
        # a bare `import torch`), so it sits above the running peak by about that much
        "ru_maxrss_mib": usage.ru_maxrss / 1024.0,
        "polled_max_rss_mib": max((s[1] for s in samples), default=0) / 1024.0,
        "rss_at_10pct_mib": rss_at(0.10),
        "rss_at_50pct_mib": rss_at(0.50),
        "rss_at_end_mib": rss_at(1.0),
        "samples": len(samples),
        # when the high-water mark rose (time s, MiB): where the peak comes from
        "hwm_steps": [(round(t, 2), round(k / 1024.0, 1)) for t, k in hwm],
        "timeline": [(round(t, 2), round(k / 1024.0, 1)) for t, k in samples[:: max(1, len(samples) // 200)]],
    }


def track_cmd(video: Path, out: Path, flags: list[str], *, stream: bool, bf16: bool) -> list[str]:
    x, y = shape_center(0)
    cmd = samstream_command() + ["track", str(video), "--point", f"0:{x:.1f},{y:.1f}", "--format", "rle"]
    cmd += ["--output-dir", str(out)] + flags
    if stream:
        cmd.append("--stream")
    if bf16:
        cmd.append("--bf16")
    return cmd


def probe_seconds_per_frame(cache: Path, flags: list[str], bf16: bool, poll: float) -> float:
    """Per-frame time from two short runs (3 and 8 frames), so start-up costs cancel out."""
    walls = []
    for n in (3, 8):
        video = make_video(cache / f"synthetic_{WIDTH}x{HEIGHT}_{n}.mp4", n)
        out = cache / "runs" / f"probe_{n}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        r = run_cli(track_cmd(video, out, flags, stream=True, bf16=bf16), out / "log.txt", poll)
        walls.append(r["wall_s"])
    return max((walls[1] - walls[0]) / 5.0, 1e-3)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="videos, weights and outputs go here")
    parser.add_argument("--lengths", default="300,3000", help="comma-separated video lengths (frames)")
    parser.add_argument("--model", choices=("auto", "tiny", "fixture"), default="auto")
    parser.add_argument("--bf16", action="store_true", help="pass --bf16 to the command line")
    parser.add_argument("--budget-min", type=float, default=40.0, help="auto: most minutes all runs may take with tiny")
    parser.add_argument("--no-contrast", action="store_true", help="skip the non-streaming run on the shortest video")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    lengths = sorted(int(v) for v in args.lengths.split(",") if v.strip())
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    contrast = not args.no_contrast
    total_frames = sum(lengths) + (lengths[0] if contrast else 0)

    kind = args.model
    probe: dict = {}
    if kind == "auto":
        spf = probe_seconds_per_frame(cache, model_flags("tiny", cache, args.seed), args.bf16, args.poll)
        projected = spf * total_frames / 60.0
        probe = {"tiny_seconds_per_frame": spf, "tiny_projected_minutes": projected}
        kind = "tiny" if projected <= args.budget_min else "fixture"
        print(
            f"probe: sam2.1_hiera_tiny @ 1024{' bf16' if args.bf16 else ''}: {spf:.2f} s/frame -> "
            f"{projected:.0f} min for {total_frames} frames; budget {args.budget_min:g} min -> using {kind}",
            flush=True,
        )
    flags = model_flags(kind, cache, args.seed)
    model_desc = (
        "sam2.1_hiera_tiny @ 1024 px, random seeded weights" if kind == "tiny" else f"parity fixture @ 256 px ({FIXTURE})"
    )
    load0 = os.getloadavg()[0]
    print(
        f"model: {model_desc}{', --bf16' if args.bf16 else ''}; video {WIDTH}x{HEIGHT} synthetic, lengths {lengths}; "
        f"load avg {load0:.2f}",
        flush=True,
    )

    plan = [(n, True) for n in lengths]
    if contrast:
        plan.append((lengths[0], False))
    runs: list[dict] = []
    for n, stream in plan:
        video = make_video(cache / f"synthetic_{WIDTH}x{HEIGHT}_{n}.mp4", n)
        out = cache / "runs" / f"{kind}_{n}_{'stream' if stream else 'file'}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        cmd = track_cmd(video, out, flags, stream=stream, bf16=args.bf16)
        print(f"running: {' '.join(cmd)}", flush=True)
        r = run_cli(cmd, out / "log.txt", args.poll)
        lines = (out / "masks.rle.jsonl").read_text().count("\n")
        r.update(frames=n, stream=stream, command=cmd, rle_records=lines, seconds_per_frame=r["wall_s"] / n)
        runs.append(r)
        print(
            f"  {n:>5} frames {'stream' if stream else 'file  '}: peak {r['peak_rss_mib']:.1f} MiB "
            f"(ru_maxrss {r['ru_maxrss_mib']:.1f}); RSS at 10% {r['rss_at_10pct_mib']:.1f}, "
            f"50% {r['rss_at_50pct_mib']:.1f}, end {r['rss_at_end_mib']:.1f} MiB; {r['wall_s']:.0f} s; "
            f"{lines} RLE records",
            flush=True,
        )

    streams = [r for r in runs if r["stream"]]
    short, long = streams[0], streams[-1]
    ratio = long["peak_rss_mib"] / short["peak_rss_mib"]
    ratio_ru = long["ru_maxrss_mib"] / short["ru_maxrss_mib"]
    print()
    header = (
        f"{'run':<22}{'peak RSS MiB':>14}{'ru_maxrss MiB':>15}{'RSS@10% MiB':>13}{'RSS@end MiB':>13}{'wall/frame':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        name = f"{r['frames']} frames {'--stream' if r['stream'] else '(no stream)'}"
        print(
            f"{name:<22}{r['peak_rss_mib']:>14.1f}{r['ru_maxrss_mib']:>15.1f}{r['rss_at_10pct_mib']:>13.1f}{r['rss_at_end_mib']:>13.1f}"
            f"{r['seconds_per_frame']:>11.3f}"
        )
    verdict = "PASS" if ratio <= 1.2 else "FAIL"
    print(
        f"peak({long['frames']}) / peak({short['frames']}) with --stream: {ratio:.3f} (goal <= 1.2: {verdict}; "
        f"ru_maxrss ratio {ratio_ru:.3f}); "
        f"growth from 10% to end of the {long['frames']}-frame run: "
        f"{long['rss_at_end_mib'] - long['rss_at_10pct_mib']:+.1f} MiB"
    )
    results = {
        "model": kind,
        "model_description": model_desc,
        "bf16": args.bf16,
        "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "synthetic": True},
        "probe": probe,
        "runs": runs,
        "ratio_long_over_short_peak": ratio,
        "ratio_long_over_short_ru_maxrss": ratio_ru,
        "goal_met": ratio <= 1.2,
        "load_avg_start": load0,
        "load_avg_end": os.getloadavg()[0],
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
