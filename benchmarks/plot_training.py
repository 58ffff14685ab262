"""The learning curve of a training run as a picture: loss terms from the run's log.csv,
smoothed over a window of logged rows.

    python benchmarks/plot_training.py runs/samstream-synthetic/log.csv --out docs/images/learning_curve.png
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
    parser.add_argument("log", type=Path, help="the run's log.csv")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--window", type=int, default=25, help="smoothing window in logged rows")
    parser.add_argument("--title", default="samstream-synthetic training")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.log, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise SystemExit(f"{args.log}: no rows")
    steps = np.array([float(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for key in ("loss", "focal", "dice", "iou", "object_score"):
        ax.plot(steps, smooth(np.array([float(r[key]) for r in rows]), args.window), label=key)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (per clip, summed over frames and correction steps)")
    ax.set_yscale("log")
    hours = float(rows[-1]["elapsed_s"]) / 3600
    ax.set_title(f"{args.title}: {int(steps[-1])} steps, {hours:.2f} h")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
