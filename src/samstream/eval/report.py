"""Evaluation results as a printed table and as CSV (written atomically)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..io.atomic import atomic_write_bytes
from .evaluate import EvalReport

__all__ = ["CSV_COLUMNS", "format_table", "csv_rows", "write_csv"]

CSV_COLUMNS = (
    "video",
    "object",
    "frames",
    "J&F",
    "J_mean",
    "J_recall",
    "J_decay",
    "F_mean",
    "F_recall",
    "F_decay",
    "missing_frames",
    "error",
)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def format_table(report: EvalReport, *, per_object: bool = True) -> str:
    """J, F and J&F (in percent) per object, per video and overall, as aligned text."""
    rows: list[tuple[str, ...]] = [("video", "object", "frames", "J&F", "J", "F")]
    for v in report.videos:
        if v.error is not None:
            rows.append((v.video, "-", "-", "error", "", ""))
            continue
        if per_object:
            for o in v.objects:
                rows.append((v.video, str(o.obj_id), str(o.frames), _pct(o.jf), _pct(o.j.mean), _pct(o.f.mean)))
        rows.append((v.video, "all", str(sum(o.frames for o in v.objects)), _pct(v.mean("jf")), _pct(v.mean("j")), _pct(v.mean("f"))))
    rows.append(("overall", str(len(report.objects)), "", _pct(report.jf), _pct(report.j), _pct(report.f)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    extra = report.seen_unseen()
    if extra is not None:
        lines.append("  ".join(f"{k} {_pct(v)}" for k, v in extra.items()))
    notes = []
    if report.missing_frames:
        notes.append(f"{report.missing_frames} ground-truth frame(s) had no prediction and were scored as empty")
    for v in report.videos:
        if v.unexpected_ids:
            notes.append(f"{v.video}: predicted ids {list(v.unexpected_ids)} are not in the ground truth (ignored)")
        if v.error is not None:
            notes.append(f"{v.video}: not scored: {v.error}")
        if v.unscored_objects:
            notes.append(f"{v.video}: objects {list(v.unscored_objects)} have no frame to score (left out)")
    if report.extra_predictions:
        notes.append(f"predictions without ground truth (ignored): {', '.join(report.extra_predictions)}")
    return "\n".join(lines + notes)


def csv_rows(report: EvalReport) -> list[dict[str, object]]:
    """One row per (video, object), one per video (object "all") and one overall row."""
    rows: list[dict[str, object]] = []

    def num(x: float) -> object:
        return "" if math.isnan(x) else round(x, 6)

    for v in report.videos:
        if v.error is not None:
            rows.append({"video": v.video, "object": "", "error": v.error})
            continue
        for o in v.objects:
            rows.append(
                {
                    "video": v.video,
                    "object": o.obj_id,
                    "frames": o.frames,
                    "J&F": num(o.jf),
                    "J_mean": num(o.j.mean),
                    "J_recall": num(o.j.recall),
                    "J_decay": num(o.j.decay),
                    "F_mean": num(o.f.mean),
                    "F_recall": num(o.f.recall),
                    "F_decay": num(o.f.decay),
                }
            )
        rows.append(
            {
                "video": v.video,
                "object": "all",
                "frames": sum(o.frames for o in v.objects),
                "J&F": num(v.mean("jf")),
                "J_mean": num(v.mean("j")),
                "F_mean": num(v.mean("f")),
                "missing_frames": len(v.missing_frames),
            }
        )
    rows.append(
        {
            "video": "overall",
            "object": len(report.objects),
            "J&F": num(report.jf),
            "J_mean": num(report.j),
            "F_mean": num(report.f),
            "missing_frames": report.missing_frames,
        }
    )
    return rows


def write_csv(report: EvalReport, path: Path | str) -> None:
    """Write :func:`csv_rows` to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow(row)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
