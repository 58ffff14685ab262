"""Peak memory and time of ``samstream everything --tile`` on a synthetic image of any size.

The script writes a synthetic RGB image (a smooth texture with discs of random colours, some
crossing tile borders) as a tiled, zlib-compressed BigTIFF, tile by tile, so writing it never
holds the whole image (``--size`` 20000 gives 20,000 x 20,000 = 400 megapixels, 1.2 GB of
pixels). It then runs, as its own process with one thread (``OMP_NUM_THREADS=1``)::

    samstream everything BIG.tif --tile 1024 --tile-overlap 128 --points-per-side 4 \\
        --pred-iou-thresh 0 --stability-score-thresh 0 --output-dir DIR <model flags>

and reports its peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``), the
wall time, the time per megapixel and the number of masks written. Each size in ``--size``
is measured, so a flat peak across sizes shows that memory does not grow with the image.

Model: by default the tests' tiny model (``tests/tiny.py``: 128-pixel input, seeded random
weights; thresholds are 0 because random weights pass no quality filter); ``--config`` and
``--checkpoint`` run any other model (e.g. the bundled ``samstream-synthetic`` one) with the
generator's default thresholds, or with ``--thresholds-zero`` keeping every mask.

Example::

    python benchmarks/bench_tiling.py --size 20000 --size 5000 --json /tmp/bench_tiling.json
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
TILE = 512  # TIFF tile of the synthetic file (not the inference tile)


def _discs(size: int, seed: int) -> np.ndarray:
    """[K, 6] discs (cx, cy, r, R, G, B), about one per 600 x 600 pixels."""
    rng = np.random.default_rng(seed)
    count = max(4, size * size // 360_000)
    centres = rng.uniform(0, size, (count, 2))
    radii = rng.uniform(40, 400, (count, 1))
    colours = rng.integers(0, 256, (count, 3))
    return np.concatenate([centres, radii, colours], axis=1)


def _tiles(size: int, discs: np.ndarray):
    """Tiles of the synthetic image in row-major order, as tifffile's writer takes them."""
    for y0 in range(0, size, TILE):
        for x0 in range(0, size, TILE):
            yy, xx = np.mgrid[y0 : y0 + TILE, x0 : x0 + TILE].astype(np.float32)
            base = 96 + 48 * np.sin(xx / 700.0) * np.cos(yy / 900.0)
            tile = np.repeat(base[:, :, None], 3, axis=2)
            near = discs[
                (discs[:, 0] + discs[:, 2] >= x0) & (discs[:, 0] - discs[:, 2] < x0 + TILE)
                & (discs[:, 1] + discs[:, 2] >= y0) & (discs[:, 1] - discs[:, 2] < y0 + TILE)
            ]
            for cx, cy, r, *rgb in near:
                inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
                tile[inside] = rgb
            yield np.clip(tile, 0, 255).astype(np.uint8)


def write_image(path: Path, size: int, seed: int) -> None:
    """A ``size`` x ``size`` synthetic RGB BigTIFF, written tile by tile."""
    import tifffile

    if path.is_file():
        return
    temp = path.with_suffix(".partial.tif")
    tifffile.imwrite(
        temp,
        _tiles(size, _discs(size, seed)),
        shape=(size, size, 3),
        dtype=np.uint8,
        tile=(TILE, TILE),
        photometric="rgb",
        compression="zlib",
        bigtiff=True,
    )
    temp.rename(path)


def tiny_model(folder: Path) -> list[str]:
    """Model flags for the tests' tiny model (written once into ``folder``)."""
    sys.path.insert(0, str(REPO / "tests"))
    from tiny import write_tiny_model

    return write_tiny_model(folder).cli_args()


def measure(image: Path, out: Path, model_args: list[str], extra: list[str]) -> dict:
    """Run the CLI as a child process; its peak RSS (ru_maxrss) and wall time."""
    if out.exists():
        shutil.rmtree(out)
    command = [
        sys.executable, "-m", "samstream", "everything", str(image), "--output-dir", str(out),
        "--tile", "1024", "--tile-overlap", "128", *extra, *model_args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the run failed: {' '.join(command)}\n{stderr[-2000:]}")
    masks = len(json.loads((out / "annotations.json").read_text())["annotations"])
    return {"command": " ".join(command), "peak_rss_mib": usage.ru_maxrss / 1024.0, "seconds": seconds, "masks": masks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, action="append", help="image side in pixels (repeatable; default 20000)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/samstream-bench-tiling"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points-per-side", type=int, default=4)
    parser.add_argument("--config", type=Path, help="model YAML (with --checkpoint); default: the tests' tiny model")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument(
        "--thresholds-zero", action="store_true",
        help="keep every mask (--pred-iou-thresh 0 --stability-score-thresh 0; always with the tiny model): "
        "the most objects to merge and write, so the worst case for memory",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    extra = ["--points-per-side", str(args.points_per_side)]
    if args.config is not None:
        model_args = ["--config", str(args.config), "--checkpoint", str(args.checkpoint)]
    else:
        model_args = tiny_model(args.cache / "tiny_model")
        args.thresholds_zero = True
    if args.thresholds_zero:
        extra += ["--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
    results = []
    for size in args.size or [20000]:
        image = args.cache / f"synthetic_{size}.tif"
        t0 = time.perf_counter()
        write_image(image, size, args.seed)
        print(f"{image}: {size}x{size} ({image.stat().st_size / 2**20:.0f} MiB on disk, written in {time.perf_counter() - t0:.0f} s)")
        result = measure(image, args.cache / f"out_{size}", model_args, extra)
        megapixels = size * size / 1e6
        result.update(size=size, megapixels=megapixels, seconds_per_megapixel=result["seconds"] / megapixels)
        results.append(result)
        print(
            f"  {size}x{size}: peak RSS {result['peak_rss_mib']:.0f} MiB, {result['seconds']:.0f} s "
            f"({result['seconds_per_megapixel']:.2f} s/megapixel), {result['masks']} masks"
        )
    print(f"machine: {os.cpu_count()} CPU(s), 1 thread per run; command: {results[-1]['command']}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
