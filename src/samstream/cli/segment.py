"""``samstream segment IMAGE --point X,Y[,LABEL] [--box X0,Y0,X1,Y1] --out DIR``, or
``samstream segment IMAGE --text "cat. dog." --out DIR`` (a detector's boxes, one mask per object).

``--geo`` (needs ``samstream[geo]``) reads the image with rasterio (GeoTIFFs, multi-band and
16-bit rasters through ``--bands`` / ``--stretch``) and adds ``DIR/labels.tif`` (the best mask
as 1, in the input's CRS and transform, at the whole raster's size) and ``DIR/polygons.geojson``
(or ``.gpkg``: every mask, with its score and area in map units). Prompts stay in pixels."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from .common import (
    ATOMIC_LEFTOVERS,
    EXIT_RUNTIME,
    CliError,
    add_max_pixels_argument,
    add_model_arguments,
    add_output_folder_arguments,
    autocast_context,
    check_model_flags,
    check_output_dir,
    load_model_from_args,
    parse_floats,
)
from .text_prompts import add_text_arguments, check_text_arguments, needs_sam_model, proposer_from_args, refuse_unused_text_flags

#: What a run writes into --out (replaced by a run with --overwrite).
OUTPUTS = (
    r"mask_\d+\.png", r"overlay\.png", r"scores\.json", r"masks\.rle\.json", r"labels\.tif",
    r"polygons\.(geojson|gpkg)", ATOMIC_LEFTOVERS,
)


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image from clicks and/or a box, or the objects a text names")
    p.add_argument("image", type=Path, help="image file (any format PIL reads; TIFFs of any size with --window; rasters GDAL reads with --geo)")
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 = foreground (default), 0 = background; repeatable",
    )
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in pixels")
    add_output_folder_arguments(p, "--out")
    add_max_pixels_argument(p)
    mm = p.add_mutually_exclusive_group()
    mm.add_argument("--multimask", dest="multimask", action="store_true", default=None, help="return 3 masks")
    mm.add_argument("--single", dest="multimask", action="store_false", help="return 1 mask")
    add_text_arguments(p)
    p.add_argument(
        "--refine",
        action="store_true",
        help="zoom in: decode each mask again on a crop around it at the model's full input size (thin structures)",
    )
    w = p.add_argument_group("large images: segment a window around the prompt")
    size = w.add_mutually_exclusive_group()
    size.add_argument(
        "--window",
        type=int,
        metavar="N",
        help="read only an N x N window (image pixels) around the prompt, enlarged to hold the box; "
        "images of any size (--max-pixels is lifted); masks are written for the window, "
        "masks.rle.json holds them at the image's size",
    )
    size.add_argument(
        "--scale",
        type=float,
        metavar="F",
        help="like --window, with the window's side = model input size / F (1 = the image's own "
        "resolution, 0.5 = twice the area at half the resolution)",
    )
    g = p.add_argument_group("georeferenced rasters")
    g.add_argument(
        "--geo",
        action="store_true",
        help="read with rasterio; write labels.tif (the best mask, in the input's CRS) and polygons.geojson "
        "(every mask, area in map units); needs samstream[geo]",
    )
    g.add_argument("--vector-format", choices=("geojson", "gpkg"), default="geojson", help="polygons file (default: %(default)s)")
    g.add_argument("--bands", metavar="B[,G,R]", help="with --geo: 1-based bands shown as R,G,B (or one band, gray)")
    g.add_argument("--stretch", metavar="LOW,HIGH", help="with --geo: percentiles mapped to 0..255 for rasters that are not 8-bit")
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


def _open_reader(args):
    """The image's reader and, with --geo, its GeoReference (None without --geo)."""
    from ..io.readers import open_raster

    if not args.geo:
        try:
            return open_raster(args.image), None
        except (FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from None
    import sys
    import warnings

    from ..geo.raster import GeoRasterReader, NoCrsWarning
    from .common import band_mapping_from_args

    if not args.image.is_file():
        raise CliError(f"image file not found: {args.image}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoCrsWarning)
        try:
            reader = GeoRasterReader(args.image, band_mapping_from_args(args))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    for warning in caught:
        print(f"samstream segment: warning: {warning.message}", file=sys.stderr)
    return reader, reader.georef


def _check_prompt_in_image(points: np.ndarray | None, box: np.ndarray | None, width: int, height: int) -> None:
    """Refuse (CliError) clicks [N, 2] or a box [4] (XYXY, image pixels) outside a width x height image."""
    from ..prompts import check_boxes, check_boxes_in_image, check_points_in_image

    try:
        if points is not None:
            check_points_in_image(points, width, height, name="--point")
        if box is not None:
            check_boxes_in_image(check_boxes(box, name="--box"), width, height, name="--box")
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _read_window(args, points, box, model_size: int | None):
    """(RGB uint8 window, its Window, (H, W) of the whole image, GeoReference or None): the
    pixels around the prompt (the whole image when ``model_size`` is None), read without
    decoding the rest of a TIFF; prompts outside the image are refused."""
    from ..tiling.grid import Window
    from ..tiling.window import prompt_window

    if args.window is not None and args.window < 16:
        raise CliError(f"--window {args.window}: must be >= 16 pixels")
    if args.scale is not None and not (0.0 < args.scale <= 16.0):
        raise CliError(f"--scale {args.scale}: must be in (0, 16]")
    whole = model_size is None
    if not whole:
        side = args.window if args.window is not None else max(16, int(round(model_size / args.scale)))
    reader, georef = _open_reader(args)
    with reader:
        width, height = reader.width, reader.height
        _check_prompt_in_image(points, box, width, height)
        if whole:
            window = Window(0, 0, width, height)
            if window.area > args.max_pixels:
                raise CliError(
                    f"{args.image}: {width}x{height} is above --max-pixels {args.max_pixels}; "
                    "segment a window around the prompt (--window N or --scale F) or raise --max-pixels"
                )
        else:
            window = prompt_window(width, height, side, points=points, box=box)
            if window.area > args.max_pixels:
                raise CliError(
                    f"--window: the window {window.width}x{window.height} needed for the prompt is above "
                    f"--max-pixels {args.max_pixels}; use a smaller box or raise --max-pixels"
                )
        return reader.read(window), window, (height, width), georef


def _window_record(window, full_hw) -> dict:
    if window is None:
        return {}
    return {"window": list(window), "image_size": [full_hw[0], full_hw[1]], "masks_full_size": "masks.rle.json"}


def _write_full_size_rles(path: Path, masks: np.ndarray, window, full_hw) -> None:
    """COCO RLEs at the whole image's size of masks [C, h, w] predicted for ``window``."""
    from ..io.atomic import atomic_write_json
    from ..tiling.sparse import SparseMask

    rles = [SparseMask.from_dense(m, x0=window.x0, y0=window.y0).to_coco_rle(*full_hw) for m in masks]
    atomic_write_json(path, {"image": [full_hw[0], full_hw[1]], "window": list(window), "masks": rles})


def _write_geo(args, result, window, full_hw, georef) -> None:
    """labels.tif (the best mask) and polygons.<format> (every mask) in the raster's CRS."""
    from ..geo.outputs import write_label_geotiff, write_polygons
    from ..tiling.merge import MergedMask
    from ..tiling.sparse import PackedMask, SparseMask

    objects = []
    for i, (mask, score) in enumerate(zip(result.masks, result.scores)):
        sparse = SparseMask.from_dense(mask, x0=window.x0, y0=window.y0)
        objects.append(
            MergedMask(
                id=i + 1, segmentation={}, area=int(mask.sum()), bbox=[], predicted_iou=float(score),
                stability_score=float("nan"), point_coords=[], tiles=[list(window)], crop_box=[], mask=PackedMask.pack(sparse),
            )
        )
    best = objects[result.best]
    write_label_geotiff(args.out / "labels.tif", [replace(best, id=1)], full_hw[0], full_hw[1], georef)
    write_polygons(args.out / f"polygons.{args.vector_format}", objects, georef, fields=("predicted_iou",))


def run(args: argparse.Namespace) -> int:
    from ..image.predictor import ImagePredictor
    from ..io.atomic import atomic_save_png, atomic_write_json
    from ..io.overlay import PromptMarks, draw_prompts, overlay_masks

    if args.text is not None:
        if args.geo:
            raise CliError("--geo goes with --point / --box prompts, not --text")
        return run_text(args)
    refuse_unused_text_flags(args)
    # everything that can be checked is checked before the model loads
    points, labels, box = _parse_prompt(args)
    model_config = check_model_flags(args)
    given_points, given_box = points, box  # image pixels, as written to scores.json
    window = georef = None
    if args.geo:
        from ..geo.raster import require_geo

        try:
            require_geo()
        except ImportError as exc:
            raise CliError(f"--geo: {exc}") from None
    elif args.bands is not None or args.stretch is not None:
        raise CliError("--bands and --stretch go with --geo")
    if args.window is not None or args.scale is not None or args.geo:
        windowed = args.window is not None or args.scale is not None
        image, window, full_hw, georef = _read_window(args, points, box, model_config.image_size if windowed else None)
        if points is not None:
            points = points - np.array([window.x0, window.y0], dtype=np.float64)
        if box is not None:
            box = box - np.array([window.x0, window.y0, window.x0, window.y0], dtype=np.float64)
        if image.dtype != np.uint8:
            image = (image * 255.0 + 0.5).astype(np.uint8)
    else:
        image = _load_rgb(args)
    h, w = image.shape[:2]
    _check_prompt_in_image(points, box, w, h)
    check_output_dir(args.out, flag="--out", inputs=[args.image], overwrite=args.overwrite, earlier_outputs=OUTPUTS)

    model = load_model_from_args(args)
    predictor = ImagePredictor(model)
    multimask = args.multimask if args.multimask is not None else (box is None and len(labels if labels is not None else []) == 1)
    with autocast_context(args):
        predictor.set_image(image)
        try:
            result = predictor.predict(points=points, labels=labels, box=box, multimask_output=multimask)
        except ValueError as exc:
            raise CliError(str(exc)) from None

    refined = None
    if args.refine:
        from ..image.refine import MaskRefiner

        refiner = MaskRefiner(model)
        with autocast_context(args):
            outcomes = [refiner.refine(image, m, points=points, labels=labels, box=box) for m in result.masks]
        result.masks = np.stack([o.mask for o in outcomes])
        refined = [o.accepted for o in outcomes]
    best = result.best
    marks = PromptMarks(
        points if points is not None else np.zeros((0, 2)),
        labels if labels is not None else np.zeros((0,), dtype=np.int64),
        box[None] if box is not None else np.zeros((0, 4)),
        box_obj_ids=(1,) if box is not None else (),
    )
    overlay = draw_prompts(overlay_masks(image, result.masks[best : best + 1], [1]), marks)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, mask in enumerate(result.masks):
            atomic_save_png(args.out / f"mask_{i}.png", mask.astype(np.uint8) * 255)
        atomic_save_png(args.out / "overlay.png", overlay)
        if window is not None:
            _write_full_size_rles(args.out / "masks.rle.json", result.masks, window, full_hw)
        if georef is not None:
            _write_geo(args, result, window, full_hw, georef)
        atomic_write_json(
            args.out / "scores.json",
            {
                "image": str(args.image),
                "scores": [float(s) for s in result.scores],
                "best": best,
                "masks": [f"mask_{i}.png" for i in range(len(result.masks))],
                "points": None if given_points is None else given_points.tolist(),
                "labels": None if labels is None else labels.tolist(),
                "box": None if given_box is None else given_box.tolist(),
                **_window_record(window, full_hw if window is not None else None),
                **({"refined": refined} if refined is not None else {}),
            },
            indent=2,
        )
    except OSError as exc:
        raise CliError(f"--out {args.out}: cannot write {exc.filename or ''}: {exc.strerror or exc}", EXIT_RUNTIME) from None
    print(f"wrote {len(result.masks)} mask(s), scores.json and overlay.png to {args.out} (best: mask_{best}.png, score {result.scores[best]:.3f})")
    return 0


def _load_rgb(args: argparse.Namespace) -> np.ndarray:
    """``args.image`` as RGB uint8 [H, W, 3], refused (CliError) above --max-pixels or when unreadable."""
    from ..image.transforms import load_image

    try:
        image = load_image(args.image, max_pixels=args.max_pixels)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if image.dtype != np.uint8:
        image = (image * 255.0 + 0.5).astype(np.uint8)
    return image


def run_text(args: argparse.Namespace) -> int:
    """``--text``: the detector's boxes, each made a mask; labels and scores in scores.json."""
    from ..image.predictor import ImagePredictor
    from ..image.text import TextSegmenter
    from ..io.atomic import atomic_save_png, atomic_write_json
    from ..io.overlay import PromptMarks, draw_prompts, overlay_masks
    from .common import EXIT_NOTHING_FOUND

    if args.point or args.box:
        raise CliError("--text finds the objects itself: it takes no --point or --box")
    if args.multimask:
        raise CliError("--text makes one mask per detected box: it cannot be combined with --multimask")
    phrases = check_text_arguments(args)
    check_model_flags(args)
    image = _load_rgb(args)
    check_output_dir(args.out, flag="--out", inputs=[args.image], overwrite=args.overwrite, earlier_outputs=OUTPUTS)

    proposer = None if needs_sam_model(args) else proposer_from_args(args)
    model = load_model_from_args(args)
    if proposer is None:
        proposer = proposer_from_args(args, sam_model=model)
    segmenter = TextSegmenter(ImagePredictor(model), proposer)
    with autocast_context(args):
        try:
            objects = segmenter.segment(image, phrases)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if not objects:
        raise CliError(
            f"--text {args.text!r}: the detector ({proposer.name}) found nothing; nothing was written "
            "(lower --box-threshold, or try another --detector)",
            EXIT_NOTHING_FOUND,
        )
    ids = list(range(1, len(objects) + 1))
    masks = np.stack([o.mask for o in objects])
    marks = PromptMarks(
        np.zeros((0, 2)),
        np.zeros((0,), dtype=np.int64),
        np.stack([o.box for o in objects]),
        box_obj_ids=tuple(ids),
        box_labels=tuple(f"{o.label} {o.score:.2f}" for o in objects),
    )
    overlay = draw_prompts(overlay_masks(image, masks, ids), marks)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, obj in enumerate(objects):
            atomic_save_png(args.out / f"mask_{i}.png", obj.mask.astype(np.uint8) * 255)
        atomic_save_png(args.out / "overlay.png", overlay)
        atomic_write_json(
            args.out / "scores.json",
            {
                "image": str(args.image),
                "text": args.text,
                "phrases": list(phrases),
                "detector": getattr(proposer, "source", "") or args.detector,
                "objects": [
                    {
                        "mask": f"mask_{i}.png",
                        "label": o.label,
                        "score": o.score,
                        "mask_score": o.mask_score,
                        "box": [float(v) for v in o.box],
                    }
                    for i, o in enumerate(objects)
                ],
            },
            indent=2,
        )
    except OSError as exc:
        raise CliError(f"--out {args.out}: cannot write {exc.filename or ''}: {exc.strerror or exc}", EXIT_RUNTIME) from None
    found = ", ".join(f"{o.label} {o.score:.2f}" for o in objects)
    print(f"wrote {len(objects)} mask(s), scores.json and overlay.png to {args.out} ({found})")
    return 0
