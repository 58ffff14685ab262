"""The learning curve of a training run as a picture: loss terms from the run's log.csv
(several runs in order, e.g. the stages of one recipe, are drawn one after the other),
smoothed over a window of logged rows.

    python benchmarks/plot_training.py runs/samstream-synthetic/stage{1,2}/log.csv --out docs/images/learning_curve.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over ``window`` rows (shorter at the start)."""
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", type=Path, nargs="+", help="log.csv of each run, in order")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--window", type=int, default=25, help="smoothing window in logged rows")
    parser.add_argument("--title", default="samstream-synthetic training")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[dict] = []
    starts = []
    step0 = time0 = 0.0
    for log in args.logs:
        with open(log, newline="") as fh:
            part = list(csv.DictReader(fh))
        if not part:
            raise SystemExit(f"{log}: no rows")
        starts.append(step0)
        mine: list[dict] = []
        offset = time0
        for r in part:
            step, elapsed = float(r["step"]) + step0, float(r["elapsed_s"])
            if mine and elapsed + offset < mine[-1]["elapsed_s"]:
                # a resumed run: its clock starts again, and it redoes the steps after its checkpoint
                offset = mine[-1]["elapsed_s"]
            while mine and mine[-1]["step"] >= step:
                mine.pop()
            mine.append(dict(r, step=step, elapsed_s=elapsed + offset))
        rows += mine
        step0, time0 = rows[-1]["step"], rows[-1]["elapsed_s"]
    steps = np.array([float(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for start in starts[1:]:
        ax.axvline(start, color="grey", linestyle="--", linewidth=0.8)
    for key in ("loss", "focal", "dice", "iou", "object_score"):
        label = "mask (focal / BCE)" if key == "focal" else key
        ax.plot(steps, smooth(np.array([float(r[key]) for r in rows]), args.window), label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per clip")
    ax.set_yscale("log")
    hours = float(rows[-1]["elapsed_s"]) / 3600
    ax.set_title(f"{args.title}: {int(steps[-1])} steps, {hours:.2f} h (dashed: next stage)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
