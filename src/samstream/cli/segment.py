"""``samstream segment IMAGE --point X,Y[,LABEL] [--box X0,Y0,X1,Y1] --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .common import CliError, add_model_arguments, autocast_context, load_model_from_args, parse_floats


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image from clicks and/or a box")
    p.add_argument("image", type=Path, help="image file (any format PIL reads)")
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 = foreground (default), 0 = background; repeatable",
    )
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in pixels")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    mm = p.add_mutually_exclusive_group()
    mm.add_argument("--multimask", dest="multimask", action="store_true", default=None, help="return 3 masks")
    mm.add_argument("--single", dest="multimask", action="store_false", help="return 1 mask")
    add_model_arguments(p)
    p.set_defaults(run=run)


def _parse_prompt(args) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    points, labels = [], []
    for text in args.point:
        values = parse_floats(text, (2, 3), "--point")
        label = 1 if len(values) == 2 else values[2]
        if label not in (0.0, 1.0):
            raise CliError(f"--point {text!r}: LABEL must be 1 (foreground) or 0 (background)")
        points.append(values[:2])
        labels.append(int(label))
    box = np.array(parse_floats(args.box, (4,), "--box")) if args.box else None
    if not points and box is None:
        raise CliError("give at least one --point or a --box")
    if points:
        return np.array(points), np.array(labels), box
    return None, None, box


def run(args: argparse.Namespace) -> int:
    from ..image.predictor import ImagePredictor
    from ..image.transforms import load_image
    from ..io.atomic import atomic_save_png, atomic_write_json
    from ..io.overlay import overlay_masks

    points, labels, box = _parse_prompt(args)
    try:
        image = load_image(args.image)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if image.dtype != np.uint8:
        image = (image * 255.0 + 0.5).astype(np.uint8)
    h, w = image.shape[:2]
    for x, y in points if points is not None else []:
        if not (0 <= x < w and 0 <= y < h):
            raise CliError(f"--point {x:g},{y:g} is outside the {w}x{h} image")
    model = load_model_from_args(args)
    predictor = ImagePredictor(model)
    multimask = args.multimask if args.multimask is not None else (box is None and len(labels if labels is not None else []) == 1)
    with autocast_context(args):
        predictor.set_image(image)
        try:
            result = predictor.predict(points=points, labels=labels, box=box, multimask_output=multimask)
        except ValueError as exc:
            raise CliError(str(exc)) from None

    args.out.mkdir(parents=True, exist_ok=True)
    for i, mask in enumerate(result.masks):
        atomic_save_png(args.out / f"mask_{i}.png", mask.astype(np.uint8) * 255)
    best = result.best
    overlay = overlay_masks(image, result.masks[best : best + 1], [1])
    atomic_save_png(args.out / "overlay.png", overlay)
    atomic_write_json(
        args.out / "scores.json",
        {
            "image": str(args.image),
            "scores": [float(s) for s in result.scores],
            "best": best,
            "masks": [f"mask_{i}.png" for i in range(len(result.masks))],
            "points": None if points is None else points.tolist(),
            "labels": None if labels is None else labels.tolist(),
            "box": None if box is None else box.tolist(),
        },
        indent=2,
    )
    print(f"wrote {len(result.masks)} mask(s), scores.json and overlay.png to {args.out} (best: mask_{best}.png, score {result.scores[best]:.3f})")
    return 0
