"""``samstream everything IMAGE_OR_FOLDER --output-dir DIR``: all masks of one image or a folder.

Writes one COCO-format file per run, ``DIR/annotations.json``::

    {"info": {...options...},
     "images": [{"id", "file_name", "width", "height"}, ...],
     "annotations": [{"id", "image_id", "category_id": 1, "segmentation": {"size": [H, W], "counts": str},
                      "area", "bbox": [x, y, w, h], "iscrowd": 0, "predicted_iou", "stability_score",
                      "point_coords", "crop_box"}, ...],
     "categories": [{"id": 1, "name": "object"}]}

``segmentation`` is a COCO RLE (pycocotools ``mask.decode`` reads it). The file is
rewritten atomically after every image, so it is always complete for the images done.

An image that cannot be read is reported on stderr with its name and skipped; the others
are processed and ``annotations.json`` lists them (its ``info.skipped`` names the skipped
files with the reason), and the command then exits with code 5 (``EXIT_PARTIAL``).
``--png`` adds ``DIR/masks/<image>/<k>.png`` (0/255, k = annotation order) and
``--overlay`` adds ``DIR/overlays/<image>.png``.

With ``--text "cat. dog."`` the masks are those of a detector's boxes: ``categories`` are the
phrases (ids 1, 2, ... in the order given), each annotation's ``category_id`` is its phrase,
``score`` the detector's confidence, ``predicted_iou`` SAM's and ``detector_box`` the box
(x0, y0, x1, y1); the overlay writes each label at its box.

``--overlay`` adds ``DIR/overlays/<image>.png``. ``--geo`` (with ``--tile``; needs
``samstream[geo]``) reads the image with rasterio and adds ``DIR/<image>_labels.tif`` (a label
GeoTIFF in the input's CRS and transform) and ``DIR/<image>_polygons.geojson`` (or ``.gpkg``,
``--vector-format``) with each object's polygon and area in map units.

``--tile N`` reads the image window by window (TIFFs: only the touched tiles are decoded) and
runs the generator on overlapping N x N tiles; masks crossing tile borders are merged into one
object (see :mod:`samstream.tiling`). Tiled runs lift ``--max-pixels`` for the input image
(``--png`` / ``--overlay`` still need the whole image and keep the limit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    ATOMIC_LEFTOVERS,
    EXIT_PARTIAL,
    EXIT_RUNTIME,
    CliError,
    add_max_pixels_argument,
    add_model_arguments,
    add_output_folder_arguments,
    autocast_context,
    check_model_flags,
    check_output_dir,
    load_model_from_args,
    remove_if_new_and_empty,
)
from .text_prompts import add_text_arguments, check_text_arguments, needs_sam_model, proposer_from_args, refuse_unused_text_flags

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ANNOTATIONS_FILE = "annotations.json"

#: What a run writes into --output-dir (replaced by a run with --overwrite).
EARLIER_OUTPUTS = (
    r"annotations\.json",
    r"masks",
    r"overlays",
    r".+_labels\.tif",
    r".+_polygons\.(geojson|gpkg)",
    ATOMIC_LEFTOVERS,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "everything",
        help="find all masks of an image (or of every image in a folder) with a grid of point prompts",
        description="Automatic mask generation; writes COCO-format annotations with RLE masks.",
    )
    p.add_argument("input", type=Path, metavar="IMAGE_OR_FOLDER", help="an image file, or a folder of images")
    add_output_folder_arguments(p, "--output-dir")
    p.add_argument("--png", action="store_true", help="also write every mask as a PNG")
    p.add_argument("--overlay", action="store_true", help="also write each image with its masks drawn on it")
    g = p.add_argument_group("generator options (defaults of the reference generator)")
    g.add_argument("--points-per-side", type=int, default=32, help="grid points per image side (default: %(default)s)")
    g.add_argument("--points-per-batch", type=int, default=64, help="points decoded together (default: %(default)s)")
    g.add_argument("--pred-iou-thresh", type=float, default=0.8, help="minimum predicted IoU (default: %(default)s)")
    g.add_argument(
        "--stability-score-thresh", type=float, default=0.95, help="minimum stability score (default: %(default)s)"
    )
    g.add_argument("--stability-score-offset", type=float, default=1.0, help="(default: %(default)s)")
    g.add_argument("--mask-threshold", type=float, default=0.0, help="logit cut for masks (default: %(default)s)")
    g.add_argument("--box-nms-thresh", type=float, default=0.7, help="box IoU for NMS within a crop (default: %(default)s)")
    g.add_argument("--crop-n-layers", type=int, default=0, help="layers of image crops (default: %(default)s)")
    g.add_argument("--crop-nms-thresh", type=float, default=0.7, help="box IoU for NMS across crops (default: %(default)s)")
    g.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500, help="(default: 512/1500)")
    g.add_argument("--crop-n-points-downscale-factor", type=int, default=1, help="(default: %(default)s)")
    g.add_argument(
        "--min-mask-region-area",
        type=float,
        default=0,
        help="fill holes / remove islands up to this area in the low-res logits, as the reference (default: %(default)s)",
    )
    g.add_argument(
        "--postprocess-small-regions",
        action="store_true",
        help="also clean holes and islands below --min-mask-region-area pixels at full resolution",
    )
    g.add_argument("--use-m2m", action="store_true", help="refine each mask once with its own logits")
    g.add_argument("--single-mask", action="store_true", help="one mask per point instead of three")
    t = p.add_argument_group("large images (tiled inference)")
    t.add_argument("--tile", type=int, metavar="N", help="run on N x N tiles, read one at a time (images of any size)")
    t.add_argument(
        "--tile-overlap", type=int, default=128, metavar="M", help="pixels shared by neighbouring tiles (default: %(default)s)"
    )
    t.add_argument(
        "--merge-iou",
        type=float,
        default=0.5,
        help="IoU inside the shared pixels above which masks of two tiles are one object (default: %(default)s)",
    )
    t.add_argument(
        "--geo",
        action="store_true",
        help="georeferenced outputs: <image>_labels.tif in the input's CRS and <image>_polygons.geojson (needs --tile)",
    )
    t.add_argument("--vector-format", choices=("geojson", "gpkg"), default="geojson", help="polygons file (default: %(default)s)")
    t.add_argument("--bands", metavar="R,G,B", help="1-based bands of a multi-band TIFF shown as RGB (or one band, gray)")
    t.add_argument(
        "--stretch",
        default="2,98",
        metavar="LOW,HIGH",
        help="percentiles mapped to 0 and 255 for rasters that are not 8-bit (default: %(default)s)",
    )
    add_max_pixels_argument(p)
    add_text_arguments(p)
    add_model_arguments(p)
    p.set_defaults(run=run)


def _config_from_args(args: argparse.Namespace):
    from dataclasses import fields

    from ..image.automatic import AutomaticMaskConfig

    try:
        return AutomaticMaskConfig(
            points_per_side=args.points_per_side,
            points_per_batch=args.points_per_batch,
            pred_iou_thresh=args.pred_iou_thresh,
            stability_score_thresh=args.stability_score_thresh,
            stability_score_offset=args.stability_score_offset,
            mask_threshold=args.mask_threshold,
            box_nms_thresh=args.box_nms_thresh,
            crop_n_layers=args.crop_n_layers,
            crop_nms_thresh=args.crop_nms_thresh,
            crop_overlap_ratio=args.crop_overlap_ratio,
            crop_n_points_downscale_factor=args.crop_n_points_downscale_factor,
            min_mask_region_area=args.min_mask_region_area,
            output_mode="coco_rle",
            use_m2m=args.use_m2m,
            multimask_output=not args.single_mask,
            postprocess_small_regions=args.postprocess_small_regions,
            max_image_megapixels=args.max_pixels / 1e6,
        )
    except ValueError as exc:
        option = str(exc).split(" ", 1)[0]
        if option in {f.name for f in fields(AutomaticMaskConfig)}:
            raise CliError(f"--{option.replace('_', '-')}: {exc}") from None
        raise CliError(str(exc)) from None


def _tiling_from_args(args: argparse.Namespace):
    """(TileConfig, BandMapping) for a tiled run, None without --tile."""
    from ..tiling.run import TileConfig
    from .common import band_mapping_from_args

    if args.tile is None:
        for flag, given in (("--bands", args.bands is not None), ("--geo", args.geo)):
            if given:
                raise CliError(f"{flag} needs --tile")
        return None
    try:
        tiles = TileConfig(tile=args.tile, overlap=args.tile_overlap, merge_iou=args.merge_iou)
    except ValueError as exc:
        raise CliError(f"--{str(exc).split(' ', 1)[0].replace('_', '-')}: {exc}") from None
    if args.geo:
        try:
            from ..geo.raster import require_geo

            require_geo()
        except ImportError as exc:
            raise CliError(f"--geo: {exc}") from None
    mapping = band_mapping_from_args(args)
    return tiles, mapping


def _list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise CliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return images
    raise CliError(f"input not found: {path}")


def _output_names(paths: list[Path]) -> list[str]:
    """A distinct file-system-safe name per image: its stem, or stem_ext when stems collide."""
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else f"{p.stem}_{p.suffix.lstrip('.')}" for p in paths]


def _load_rgb(path: Path, max_pixels: int) -> np.ndarray:
    """RGB uint8 [H, W, 3]; ValueError (naming the file) when it cannot be read or is too large."""
    from ..image.transforms import load_image

    image = load_image(path, max_pixels=max_pixels)
    if image.dtype != np.uint8:
        image = (image * 255.0 + 0.5).astype(np.uint8)
    return image


def _readable(
    paths: list[Path], max_pixels: int, *, tiled: bool = False
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split images into those whose header reads and fits ``max_pixels`` (any size when
    ``tiled``), and (path, reason) for the rest."""
    from ..image.transforms import ImageTooLargeError, read_image_size
    from ..io.readers import read_size

    good, bad = [], []
    for path in paths:
        try:
            if tiled:
                read_size(path)
            else:
                read_image_size(path, max_pixels=max_pixels)
        except ImageTooLargeError as exc:
            if len(paths) == 1:
                raise CliError(str(exc)) from None
            bad.append((path, str(exc)))
        except (OSError, ValueError) as exc:
            bad.append((path, str(exc)))
        else:
            good.append(path)
    return good, bad


def _generate_tiled(args: argparse.Namespace, generator, path: Path, tiling):
    """(image or None, height, width, merged masks) of one image run tile by tile; the image
    itself is read whole only for --png / --overlay, within --max-pixels."""
    from tqdm.auto import tqdm

    from ..image.transforms import ImageTooLargeError
    from ..io.readers import open_raster
    from ..tiling.grid import Window, tile_grid
    from ..tiling.run import generate_tiled

    tiles, mapping = tiling
    georef = None
    if args.geo:
        import warnings

        from ..geo.raster import GeoRasterReader, NoCrsWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NoCrsWarning)
            reader = GeoRasterReader(path, mapping)
        for warning in caught:
            _warn(str(warning.message))
        georef = reader.georef
    else:
        try:
            reader = open_raster(path, mapping)
        except ImportError as exc:
            raise CliError(str(exc), EXIT_RUNTIME) from None
    with reader:
        height, width = reader.height, reader.width
        image = None
        if args.png or args.overlay:
            if height * width > args.max_pixels:
                raise ImageTooLargeError(f"image {path} (needed whole for --png/--overlay)", width, height, args.max_pixels)
            image = reader.read(Window(0, 0, width, height))
        count = len(tile_grid(height, width, tile=tiles.tile, overlap=tiles.overlap))
        with tqdm(total=count, desc=f"tiles of {path.name}", unit="tile", leave=False) as bar:
            with autocast_context(args):
                masks = generate_tiled(
                    generator, reader, tiles, on_tile=lambda *_: bar.update(1), keep_pixels=bool(args.geo)
                )
    return image, height, width, masks, georef


def _write_geo(args: argparse.Namespace, out_dir: Path, name: str, masks, height: int, width: int, georef) -> None:
    from ..geo.outputs import write_label_geotiff, write_polygons

    write_label_geotiff(out_dir / f"{name}_labels.tif", masks, height, width, georef)
    write_polygons(out_dir / f"{name}_polygons.{args.vector_format}", masks, georef)


def _warn(message: str) -> None:
    import sys

    from tqdm.auto import tqdm

    tqdm.write(f"samstream everything: warning: {message}", file=sys.stderr)


def _report_skip(path: Path, reason: str) -> None:
    import sys

    from tqdm.auto import tqdm

    tqdm.write(f"samstream everything: skipped {path}: {reason}", file=sys.stderr)  # on its own line, not inside the bar


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..io.rle import decode_coco_rle
    from ..image.automatic import AutomaticMaskGenerator
    from ..io.atomic import atomic_save_png, atomic_write_json
    from ..io.overlay import overlay_masks

    # inputs, config, device and output folder are checked before the model loads
    config = _config_from_args(args)
    refuse_unused_text_flags(args)
    phrases = check_text_arguments(args) if args.text is not None else None
    tiling = _tiling_from_args(args)
    if tiling is not None and phrases is not None:
        raise CliError("--text cannot be combined with --tile (tiled runs use the automatic generator)")
    all_paths = _list_images(args.input)
    paths, skipped = _readable(all_paths, args.max_pixels, tiled=tiling is not None and not (args.png or args.overlay))
    if not paths:
        path, reason = skipped[0]
        more = f" (and {len(skipped) - 1} other unreadable image(s))" if len(skipped) > 1 else ""
        raise CliError(f"no readable image: {reason}{more}")
    for path, reason in skipped:
        _report_skip(path, reason)
    names = dict(zip(all_paths, _output_names(all_paths)))
    check_model_flags(args)
    out_dir: Path = args.output_dir
    existed = check_output_dir(
        out_dir, flag="--output-dir", inputs=[args.input], overwrite=args.overwrite, earlier_outputs=EARLIER_OUTPUTS
    )
    proposer = proposer_from_args(args) if phrases is not None and not needs_sam_model(args) else None
    model = load_model_from_args(args)
    generator = AutomaticMaskGenerator(model, config)
    segmenter = None
    if phrases is not None:
        from ..image.predictor import ImagePredictor
        from ..image.text import TextSegmenter

        if proposer is None:
            proposer = proposer_from_args(args, sam_model=model, automatic_config=config)
        segmenter = TextSegmenter(ImagePredictor(model), proposer)
    categories = _Categories(phrases or ())

    document: dict[str, Any] = {
        "info": {
            "description": "samstream everything",
            "model": str(args.config) if args.config is not None else args.model,
            "options": {k: v for k, v in vars(config).items() if k != "point_grids"},
            "skipped": [],
        },
        "images": [],
        "annotations": [],
        **({"tiling": {"tile": tiling[0].tile, "overlap": tiling[0].overlap, "merge_iou": tiling[0].merge_iou}} if tiling else {}),
        "categories": categories.entries,
    }
    if phrases is not None:
        document["info"]["text"] = args.text
        document["info"]["phrases"] = list(phrases)
        document["info"]["detector"] = getattr(proposer, "source", "") or args.detector

    def skip(path: Path, reason: str) -> None:
        _report_skip(path, reason)
        document["info"]["skipped"].append({"file_name": str(path), "reason": reason})

    document["info"]["skipped"] = [{"file_name": str(p), "reason": r} for p, r in skipped]
    total = 0
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        image_ids = {path: i for i, path in enumerate(all_paths, start=1)}  # stable ids: the position in the folder
        for path in tqdm(paths, desc="images", unit="image"):
            image_id, name = image_ids[path], names[path]
            try:
                if tiling is not None:
                    image, height, width, masks, georef = _generate_tiled(args, generator, path, tiling)
                else:
                    image = _load_rgb(path, args.max_pixels)
                    height, width = image.shape[:2]
                    with autocast_context(args):
                        if segmenter is not None:
                            found = segmenter.segment(image, phrases)
                        else:
                            masks = generator.generate(image)
            except (OSError, ValueError) as exc:
                skip(path, str(exc))
                atomic_write_json(out_dir / ANNOTATIONS_FILE, document)
                continue
            document["images"].append({"id": image_id, "file_name": str(path), "width": width, "height": height})
            if segmenter is not None:
                total = _write_text_image(args, out_dir, name, image, image_id, found, document, categories, total)
                atomic_write_json(out_dir / ANNOTATIONS_FILE, document)
                continue
            for mask in masks:
                total += 1
                document["annotations"].append(
                    {
                        "id": total,
                        "image_id": image_id,
                        "category_id": 1,
                        "segmentation": mask.segmentation,
                        "area": mask.area,
                        "bbox": mask.bbox,
                        "iscrowd": 0,
                        "predicted_iou": mask.predicted_iou,
                        "stability_score": mask.stability_score,
                        "point_coords": mask.point_coords,
                        "crop_box": mask.crop_box,
                    }
                )
            if tiling is not None and args.geo:
                _write_geo(args, out_dir, name, masks, height, width, georef)
            if args.png or args.overlay:
                binary = decode_coco_rle([m.segmentation for m in masks], (height, width))
                if args.png:
                    for k, mask_image in enumerate(binary):
                        atomic_save_png(out_dir / "masks" / name / f"{k:04d}.png", mask_image.astype(np.uint8) * 255)
                if args.overlay:
                    order = np.argsort([-m.area for m in masks], kind="stable")  # small masks drawn on top
                    drawn = overlay_masks(image, np.ascontiguousarray(binary[order]), [int(i) + 1 for i in order])
                    atomic_save_png(out_dir / "overlays" / f"{name}.png", drawn)
            atomic_write_json(out_dir / ANNOTATIONS_FILE, document)
    except OSError as exc:
        remove_if_new_and_empty(out_dir, existed)
        done = len(document["images"])
        raise CliError(
            f"cannot write {exc.filename or out_dir}: {exc.strerror or exc} ({done} image(s) complete in {out_dir})",
            EXIT_RUNTIME,
        ) from None
    failed = document["info"]["skipped"]
    print(f"wrote {total} mask(s) of {len(document['images'])} image(s) to {out_dir / ANNOTATIONS_FILE}")
    if total == 0 and document["images"] and segmenter is None:
        print(
            f"samstream everything: no mask passed the filters (--pred-iou-thresh {args.pred_iou_thresh}, "
            f"--stability-score-thresh {args.stability_score_thresh}); a model that is less sure of its masks "
            "needs lower ones",
            file=sys.stderr,
        )
    if failed:
        raise CliError(
            f"{len(failed)} of {len(all_paths)} image(s) could not be read and were skipped "
            f"({', '.join(Path(f['file_name']).name for f in failed)}); "
            f"{ANNOTATIONS_FILE} lists the others and info.skipped the reasons",
            EXIT_PARTIAL,
        )
    return 0


class _Categories:
    """COCO categories: the phrases in order (ids 1, 2, ...), then any other label met; without
    phrases the one class-agnostic category ``object``."""

    def __init__(self, phrases: tuple[str, ...]) -> None:
        self.entries: list[dict[str, Any]] = []
        self._ids: dict[str, int] = {}
        for name in phrases or ("object",):
            self.id_of(name)

    def id_of(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = len(self._ids) + 1
            self.entries.append({"id": self._ids[name], "name": name})
        return self._ids[name]


def _write_text_image(args, out_dir: Path, name: str, image: np.ndarray, image_id: int, found, document, categories, total: int) -> int:
    """The annotations (and --png / --overlay files) of one image's detected objects; returns the new total."""
    from ..io.atomic import atomic_save_png
    from ..io.overlay import draw_labels, overlay_masks
    from ..io.rle import coco_rle_areas, coco_rle_boxes_xywh, encode_coco_rle

    if not found:
        return total
    binary = np.stack([o.mask for o in found])
    rles = encode_coco_rle(binary)
    for obj, rle, area, box in zip(found, rles, coco_rle_areas(rles), coco_rle_boxes_xywh(rles)):
        total += 1
        document["annotations"].append(
            {
                "id": total,
                "image_id": image_id,
                "category_id": categories.id_of(obj.label),
                "segmentation": rle,
                "area": int(area),
                "bbox": [float(v) for v in box],
                "iscrowd": 0,
                "score": obj.score,
                "predicted_iou": obj.mask_score,
                "detector_box": [float(v) for v in obj.box],
            }
        )
    if args.png:
        for k, mask_image in enumerate(binary):
            atomic_save_png(out_dir / "masks" / name / f"{k:04d}.png", mask_image.astype(np.uint8) * 255)
    if args.overlay:
        ids = list(range(1, len(found) + 1))
        drawn = overlay_masks(image, binary, ids)
        drawn = draw_labels(drawn, np.stack([o.box for o in found]), [f"{o.label} {o.score:.2f}" for o in found], ids)
        atomic_save_png(out_dir / "overlays" / f"{name}.png", drawn)
    return total
