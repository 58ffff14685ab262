"""``samstream track VIDEO_OR_FOLDER --point FRAME:X,Y[:OBJ[:LABEL]] ... --output-dir DIR``; or
``--everything`` / ``--text "person."``: objects found on the first frame (and every
``--detect-every`` frames) and tracked, each object's label in ``objects.json``.

A 3-D volume (a NIfTI file or a folder of one DICOM series; needs ``samstream[medical]``) is
tracked like a video whose frames are its slices along ``--axis``: voxel values are mapped to
8-bit with ``--window CENTER,WIDTH`` or ``--preset``, prompts on any slice are propagated
both ways (forward from the first prompted slice, then backward from it), and besides the
per-slice masks of ``--format`` the run writes ``labels.nii.gz`` (object ids, in the input's
affine and spacing) and ``volume.json`` (voxel count and millilitres per object).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import (
    ATOMIC_LEFTOVERS,
    EXIT_NOTHING_FOUND,
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
    remove_if_new_and_empty,
)
from .text_prompts import add_text_arguments, check_text_arguments, needs_sam_model, proposer_from_args, refuse_unused_text_flags
from .vos_infer import add_memory_arguments, check_lag, check_memory

FORMAT_OUTPUTS = {"png": "", "palette": "", "rle": "masks.rle.jsonl", "mp4": "overlay.mp4"}

#: What a run of any format writes into --output-dir (replaced by a run with --overwrite):
#: png's object folders, palette's frame PNGs, the RLE file, the video (also unfinished).
EARLIER_OUTPUTS = (
    r"\d{3,}",
    r"\d{5,}\.png",
    r"masks\.rle\.jsonl",
    r"overlay\.mp4(\.partial)?",
    r"objects\.json",
    r"labels\.nii\.gz",
    r"volume\.json",
    ATOMIC_LEFTOVERS,
)

#: Object ids each format can store.
_PALETTE_IDS = range(1, 256)


@dataclass
class FramePrompt:
    """Everything given for one object on one frame."""

    points: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: list[float] | None = None
    mask_path: Path | None = None


def add_parser(sub) -> None:
    p = sub.add_parser("track", help="segment objects on some frames and track them through a video")
    p.add_argument("video", type=Path, help="video file (any format PyAV reads) or a folder of frames")
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="FRAME:X,Y[:OBJ[:LABEL]]",
        help="a click in pixels on a frame; OBJ defaults to 1, LABEL to 1 (0 = background); repeatable",
    )
    p.add_argument("--box", action="append", default=[], metavar="FRAME:X0,Y0,X1,Y1[:OBJ]", help="a box; repeatable")
    p.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="FRAME:PNG[:OBJ]",
        help="a mask image; the path may contain ':' (C:\\m.png), a last ':<digits>' is OBJ; repeatable",
    )
    add_output_folder_arguments(p, "--output-dir")
    add_max_pixels_argument(p)
    p.add_argument(
        "--format",
        choices=sorted(FORMAT_OUTPUTS),
        default="png",
        help="png: one PNG per object per frame (SA-V layout); palette: one DAVIS palette PNG per frame; "
        "rle: COCO RLE JSON lines; mp4: the video with masks overlaid (default: %(default)s)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="process frames in order keeping only what the memory can still use (memory flat in video length)",
    )
    p.add_argument("--reverse", action="store_true", help="track backwards from the last prompted frame")
    p.add_argument(
        "--refine",
        action="store_true",
        help="zoom in: decode each output mask again on a crop around it at the model's full input size "
        "(outputs only; what the tracker remembers is unchanged)",
    )
    p.add_argument("--fill-hole-area", type=int, default=8, help="fill mask holes up to this area (default: %(default)s)")
    vol = p.add_argument_group("3-D volumes (NIfTI file or DICOM series folder)")
    vol.add_argument("--axis", type=int, choices=(0, 1, 2), default=2, help="voxel axis the slices are taken along (default: %(default)s)")
    win = vol.add_mutually_exclusive_group()
    win.add_argument("--window", metavar="CENTER,WIDTH", help="intensity window mapped to 0..255 (e.g. 40,400 for soft tissue in HU)")
    win.add_argument(
        "--preset",
        choices=("soft-tissue", "lung", "bone", "brain", "liver"),
        help="a usual CT window (default without --window: the 0.5-99.5 percentiles of the volume)",
    )
    add_memory_arguments(p)
    p.add_argument(
        "--object-memory",
        action="append",
        default=[],
        metavar="OBJ=NAME",
        help="a memory strategy for one object (the others use --memory); repeatable",
    )
    every = p.add_argument_group("find and track everything (--everything), or what a text names (--text)")
    every.add_argument(
        "--everything", action="store_true", help="discover objects automatically on the first frame and track them all"
    )
    every.add_argument(
        "--detect-every", type=int, default=0, metavar="N", help="look for new objects every N frames (default: first frame only)"
    )
    every.add_argument(
        "--new-object-iou",
        "--match-iou",
        dest="new_object_iou",
        type=float,
        default=0.5,
        help="a found mask is new below this IoU with every tracked mask; a tracked object is matched by one at or "
        "above it (default: %(default)s)",
    )
    every.add_argument(
        "--drop-after",
        type=int,
        default=0,
        metavar="N",
        help="stop tracking an object once N frames have passed since a found mask last matched it "
        "(checked every --detect-every frames; default: never)",
    )
    every.add_argument("--points-per-side", type=int, default=16, help="generator grid (default: %(default)s)")
    every.add_argument("--pred-iou-thresh", type=float, default=0.8, help="generator filter (default: %(default)s)")
    every.add_argument("--stability-score-thresh", type=float, default=0.95, help="generator filter (default: %(default)s)")
    every.add_argument("--max-objects", type=int, default=100, help="most objects to track (default: %(default)s)")
    add_text_arguments(p)
    add_model_arguments(p)
    p.set_defaults(run=run)


def _split(text: str, flag: str, parts: tuple[int, ...]) -> list[str]:
    pieces = text.split(":")
    if len(pieces) not in parts:
        raise CliError(f"{flag} {text!r}: expected the form {_FORMS[flag]}")
    return pieces


_FORMS = {"--point": "FRAME:X,Y[:OBJ[:LABEL]]", "--box": "FRAME:X0,Y0,X1,Y1[:OBJ]", "--mask": "FRAME:PNG[:OBJ]"}


def _int(text: str, flag: str, what: str, whole: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CliError(f"{flag} {whole!r}: {what} must be an integer, got {text!r}") from None
    if value < 0:
        raise CliError(f"{flag} {whole!r}: {what} must be >= 0")
    return value


def parse_prompts(args: argparse.Namespace) -> dict[tuple[int, int], FramePrompt]:
    """(frame, obj_id) -> prompt, from the --point/--box/--mask flags."""
    prompts: dict[tuple[int, int], FramePrompt] = {}
    for text in args.point:
        parts = _split(text, "--point", (2, 3, 4))
        frame = _int(parts[0], "--point", "FRAME", text)
        xy = parse_floats(parts[1], (2,), "--point")
        obj = _int(parts[2], "--point", "OBJ", text) if len(parts) > 2 else 1
        label = _int(parts[3], "--point", "LABEL", text) if len(parts) > 3 else 1
        if label not in (0, 1):
            raise CliError(f"--point {text!r}: LABEL must be 1 (foreground) or 0 (background)")
        p = prompts.setdefault((frame, obj), FramePrompt())
        p.points.append(xy)
        p.labels.append(label)
    for text in args.box:
        parts = _split(text, "--box", (2, 3))
        frame = _int(parts[0], "--box", "FRAME", text)
        box = parse_floats(parts[1], (4,), "--box")
        if box[2] < box[0] or box[3] < box[1]:
            raise CliError(f"--box {text!r}: needs X1 >= X0 and Y1 >= Y0")
        obj = _int(parts[2], "--box", "OBJ", text) if len(parts) > 2 else 1
        p = prompts.setdefault((frame, obj), FramePrompt())
        if p.box is not None:
            raise CliError(f"--box {text!r}: object {obj} already has a box on frame {frame}")
        p.box = box
    for text in args.mask:
        frame, path, obj = parse_mask_flag(text)
        p = prompts.setdefault((frame, obj), FramePrompt())
        if p.points or p.box is not None:
            raise CliError(f"--mask {text!r}: object {obj} on frame {frame} already has clicks or a box")
        p.mask_path = path
    if not prompts:
        raise CliError("give at least one --point, --box or --mask")
    return prompts


def parse_mask_flag(text: str) -> tuple[int, Path, int]:
    """``FRAME:PNG[:OBJ]`` -> (frame, path, obj).  The path may contain ``:`` (``C:\\m.png``):
    the first ``:`` ends FRAME, and a last ``:`` followed only by digits starts OBJ."""
    frame_text, sep, rest = text.partition(":")
    if not sep or not rest:
        raise CliError(f"--mask {text!r}: expected the form {_FORMS['--mask']}")
    frame = _int(frame_text, "--mask", "FRAME", text)
    head, sep, tail = rest.rpartition(":")
    if sep and head and tail.isdigit():
        return frame, Path(head), int(tail)
    return frame, Path(rest), 1


def _check_ids_for_format(args: argparse.Namespace, prompts) -> None:
    """The object ids the chosen format cannot store, refused before anything runs."""
    if args.format != "palette":
        return
    discovering = args.everything or args.text is not None
    bad = sorted({obj for _, obj in prompts if obj not in _PALETTE_IDS})
    if bad:
        raise CliError(
            f"--format palette stores object ids 1..255 in 8-bit PNGs (0 is background), got object id(s) "
            f"{', '.join(map(str, bad))}: renumber them or use --format png or rle"
        )
    if discovering and args.max_objects > len(_PALETTE_IDS):
        raise CliError(f"--format palette stores at most 255 objects: use --max-objects 255 or less, or --format png")


def parse_object_memory(values: list[str]) -> dict[int, str]:
    """``--object-memory OBJ=NAME`` flags -> {obj_id: strategy name}, names checked."""
    chosen: dict[int, str] = {}
    for text in values:
        obj_text, sep, name = text.partition("=")
        if not sep or not name:
            raise CliError(f"--object-memory {text!r}: expected the form OBJ=NAME")
        obj = _int(obj_text, "--object-memory", "OBJ", text)
        if obj in chosen:
            raise CliError(f"--object-memory {text!r}: object {obj} already has a strategy ({chosen[obj]})")
        try:
            check_memory(name)
        except CliError as exc:
            raise CliError(f"--object-memory {text!r}: {str(exc).split(': ', 1)[1]}") from None
        chosen[obj] = name
    return chosen


def _memory_strategy(args: argparse.Namespace, per_object: dict[int, str], config):
    """The strategy of --memory, with --object-memory's choices for their objects."""
    from ..video.memory import PerObjectMemory, make_strategy

    base = make_strategy(args.memory, config)
    if not per_object:
        return base
    return PerObjectMemory({obj: make_strategy(name, config) for obj, name in per_object.items()}, base)


def _prompt_marks(prompts) -> dict:
    """frame -> the clicks and boxes given on it (drawn on the overlay video)."""
    from ..io.overlay import PromptMarks

    marks: dict = {}
    for (frame, obj), p in sorted(prompts.items()):
        one = PromptMarks(
            np.asarray(p.points, dtype=np.float64).reshape(-1, 2),
            np.asarray(p.labels, dtype=np.int64),
            np.asarray([p.box] if p.box is not None else [], dtype=np.float64).reshape(-1, 4),
            (obj,) * len(p.points),
            (obj,) if p.box is not None else (),
        )
        marks[frame] = marks[frame].merged(one) if frame in marks else one
    return marks


def _load_mask(path: Path, height: int, width: int, max_pixels: int) -> np.ndarray:
    from ..image.transforms import ImageTooLargeError, open_image

    if not path.is_file():
        raise CliError(f"--mask: file not found: {path}")
    try:
        with open_image(path, max_pixels=max_pixels) as img:
            arr = np.asarray(img.convert("L"))
    except ImageTooLargeError as exc:
        raise CliError(f"--mask: {exc}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"--mask: cannot read {path}: {exc}") from None
    if arr.shape != (height, width):
        raise CliError(f"--mask {path}: mask is {arr.shape[1]}x{arr.shape[0]} but the video is {width}x{height}")
    return arr > 0


def _validate(
    prompts, num_frames: int | None, height: int, width: int, max_pixels: int
) -> dict[tuple[int, int], np.ndarray]:
    """Check every prompt against the video before anything is written; load mask files."""
    from ..prompts import check_boxes_in_image, check_points_in_image

    masks = {}
    for (frame, obj), p in prompts.items():
        if num_frames is not None and frame >= num_frames:
            raise CliError(f"prompt for object {obj} is on frame {frame}, but the video has {num_frames} frames (0..{num_frames - 1})")
        try:
            if p.points:
                check_points_in_image(np.asarray(p.points), width, height, name=f"--point on frame {frame}:")
            if p.box is not None:
                check_boxes_in_image(np.asarray([p.box], dtype=np.float64), width, height, name=f"--box on frame {frame}:")
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if p.mask_path is not None:
            masks[(frame, obj)] = _load_mask(p.mask_path, height, width, max_pixels)
    return masks


def _apply_prompt(add_points, add_mask, frame: int, obj: int, p: FramePrompt, mask: np.ndarray | None):
    if mask is not None:
        return add_mask(frame, obj, mask)
    return add_points(
        frame,
        obj,
        np.array(p.points) if p.points else None,
        np.array(p.labels) if p.points else None,
        p.box,
    )


def _open_prompted_session(predictor, source, prompts, mask_prompts):
    """A session of ``predictor`` (a VideoPredictor) on ``source`` holding every prompt: the
    clicks and boxes of ``prompts``, or the mask of ``mask_prompts`` for its (frame, obj), in
    (frame, obj) order."""
    session = predictor.open_session(source)
    for (frame, obj), p in sorted(prompts.items()):
        _apply_prompt(
            lambda f, o, pts, lab, box: predictor.add_prompt(session, f, o, points=pts, labels=lab, box=box),
            lambda f, o, m: predictor.add_mask(session, f, o, m),
            frame,
            obj,
            p,
            mask_prompts.get((frame, obj)),
        )
    return session


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..io.writers import make_writer
    from ..video.sources import FrameSourceError, open_frame_source
    from ..video.predictor import VideoPredictor, VideoPredictorOptions
    from ..video.streaming import StreamingTracker

    refuse_unused_text_flags(args)
    phrases = None
    if args.text is not None:
        if args.everything:
            raise CliError("--text and --everything both find the objects: give one of them")
        phrases = check_text_arguments(args)
    discovering = args.everything or phrases is not None
    if discovering:
        flag = "--everything" if args.everything else "--text"
        if args.point or args.box or args.mask:
            raise CliError(f"{flag} finds the objects itself: it takes no --point, --box or --mask")
        if args.reverse:
            raise CliError(f"{flag} tracks forward: it cannot be combined with --reverse")
        if args.lag:
            raise CliError(f"{flag} gives each frame as it is tracked: it cannot be combined with --lag")
        prompts = {}
    else:
        prompts = parse_prompts(args)
    if args.fill_hole_area < 0:
        raise CliError("--fill-hole-area must be >= 0")
    check_memory(args.memory)
    check_lag(args.lag)
    per_object_memory = parse_object_memory(args.object_memory)
    if args.stream and args.reverse:
        raise CliError("--stream processes frames as they come: it cannot be combined with --reverse")
    if args.format == "mp4" and args.reverse:
        raise CliError("--format mp4 writes frames in playing order: it cannot be combined with --reverse")
    _check_ids_for_format(args, prompts)
    if discovering:
        if args.drop_after < 0:
            raise CliError(f"--drop-after must be >= 0, got {args.drop_after}")
        if args.drop_after and not args.detect_every:
            raise CliError("--drop-after needs --detect-every N: objects are matched on the detection frames")
        _everything_options(args)
    # the config, device, output folder and video are checked before the model loads
    config = check_model_flags(args)
    existed = check_output_dir(
        args.output_dir, flag="--output-dir", inputs=[args.video], overwrite=args.overwrite, earlier_outputs=EARLIER_OUTPUTS
    )
    volume = _open_volume(args, config.image_size)
    try:
        source = volume if volume is not None else open_frame_source(args.video, config.image_size, max_pixels=args.max_pixels)
    except (FileNotFoundError, FrameSourceError, ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    n, height, width = source.num_frames, source.video_height, source.video_width
    mask_prompts = _validate(prompts, n, height, width, args.max_pixels)
    proposer = proposer_from_args(args) if phrases is not None and not needs_sam_model(args) else None
    model = load_model_from_args(args, for_video=True)
    options = VideoPredictorOptions(fill_hole_area=args.fill_hole_area, output_lag=args.lag)
    memory = _memory_strategy(args, per_object_memory, model.config)

    labels: dict[int, str] = {}  # filled as objects are found; the writers read it on every frame
    out_name = FORMAT_OUTPUTS[args.format]
    output = args.output_dir / out_name if out_name else args.output_dir
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        writer = make_writer(
            args.format,
            output,
            video_height=height,
            video_width=width,
            fps=source.fps or 25.0,
            frames=source,
            marks=_prompt_marks(prompts),
            labels=labels,
        )
    except OSError as exc:
        raise CliError(f"--output-dir {args.output_dir}: cannot write: {exc.strerror or exc}", EXIT_RUNTIME) from None
    written = 0
    refiner = None
    if args.refine:
        from ..image.refine import MaskRefiner

        refiner = MaskRefiner(model)
        raw_writer, writer = writer, _RefiningWriter(writer, refiner, source)
    else:
        raw_writer = writer
    try:
        with writer, autocast_context(args):
            if discovering:
                if phrases is not None:
                    tracker = _text_tracker(args, model, options, proposer, phrases, memory)
                else:
                    tracker = _everything_tracker(args, model, options, memory)
                session = tracker.predictor.open_session(source, streaming=args.stream)
                known: tuple = ()
                for frame_idx, obj_ids, logits in tracker.run(session):
                    if phrases is not None and tuple(tracker.discovery.objects.values()) != known:
                        labels.update(tracker.discovery.labels)
                        _write_objects(args, tracker, phrases)
                        known = tuple(tracker.discovery.objects.values())
                    writer.write(frame_idx, obj_ids, (logits[:, 0] > 0).cpu().numpy())
                    written += 1
                if phrases is not None and tuple(tracker.discovery.objects.values()) != known:
                    _write_objects(args, tracker, phrases)  # objects dropped on the last frames
                found = len(tracker.discovery.objects)
                print(f"found {found} object(s)")
            elif args.stream:
                tracker = StreamingTracker(model, options, memory=memory)
                by_frame: dict[int, list[tuple[int, FramePrompt]]] = {}
                for (frame, obj), p in prompts.items():
                    by_frame.setdefault(frame, []).append((obj, p))
                for t in tqdm(range(n), desc="track (stream)", unit="frame"):
                    result = tracker.add_frame(source.get_rgb(t))
                    for obj, p in sorted(by_frame.get(t, []), key=lambda item: item[0]):
                        result = _apply_prompt(
                            lambda f, o, pts, lab, box: tracker.add_prompt(o, points=pts, labels=lab, box=box),
                            lambda f, o, m: tracker.add_mask(o, m),
                            t,
                            obj,
                            p,
                            mask_prompts.get((t, obj)),
                        )
                    if args.lag:  # the frame that became final: t - lag, along the best hypothesis
                        result = tracker.settled
                        if result is None:
                            continue
                    frame_idx, obj_ids, logits = result
                    if obj_ids:
                        writer.write(frame_idx, obj_ids, (logits[:, 0] > 0).cpu().numpy())
                        written += 1
                for frame_idx, obj_ids, logits in tracker.finish():
                    if obj_ids:
                        writer.write(frame_idx, obj_ids, (logits[:, 0] > 0).cpu().numpy())
                        written += 1
            elif volume is not None:
                written = _track_volume(args, model, options, source, prompts, mask_prompts, raw_writer, refiner)
            else:
                predictor = VideoPredictor(model, options, memory=memory)
                session = _open_prompted_session(predictor, source, prompts, mask_prompts)
                frames = [frame for frame, _ in prompts]
                start = max(frames) if args.reverse else min(frames)
                for frame_idx, obj_ids, logits in predictor.propagate(session, start_frame_idx=start, reverse=args.reverse):
                    writer.write(frame_idx, obj_ids, (logits[:, 0] > 0).cpu().numpy())
                    written += 1
    except (FrameSourceError, ValueError, IndexError, KeyError) as exc:
        remove_if_new_and_empty(args.output_dir, existed)
        raise CliError(f"{exc} ({written} frames were written completely to {args.output_dir})", EXIT_RUNTIME) from None
    except OSError as exc:
        remove_if_new_and_empty(args.output_dir, existed)
        where = exc.filename or args.output_dir
        raise CliError(
            f"cannot write {where}: {exc.strerror or exc} ({written} frames were written completely to {args.output_dir})",
            EXIT_RUNTIME,
        ) from None
    if phrases is not None and written == 0:
        remove_if_new_and_empty(args.output_dir, existed)
        every = f"every {args.detect_every} frames" if args.detect_every else "on the first frame"
        raise CliError(
            f"--text {args.text!r}: the detector ({proposer.name if proposer else args.detector}) found nothing ({every}): "
            "nothing was written; lower --box-threshold, use --detect-every, or try another --detector",
            EXIT_NOTHING_FOUND,
        )
    if args.everything and written == 0:
        remove_if_new_and_empty(args.output_dir, existed)
        every = f"every {args.detect_every} frames" if args.detect_every else "on the first frame"
        raise CliError(
            f"--everything found no object ({every}, --pred-iou-thresh {args.pred_iou_thresh:g}, "
            f"--stability-score-thresh {args.stability_score_thresh:g}): nothing was written; "
            "lower the thresholds or use --detect-every",
            EXIT_NOTHING_FOUND,
        )
    if not discovering:
        print(f"tracked {len({obj for _, obj in prompts})} object(s) over {written} frames -> {output}")
    else:
        print(f"wrote {written} frames -> {output}")
    return 0


def _open_volume(args: argparse.Namespace, image_size: int):
    """A :class:`VolumeFrameSource` when the input is a NIfTI file or a DICOM folder, else None
    (the volume flags are refused for videos)."""
    from ..io.volumes import WINDOW_PRESETS, IntensityWindow, VolumeError, is_volume_path, load_volume

    window = None
    if args.window is not None:
        center, width = parse_floats(args.window, (2,), "--window")
        try:
            window = IntensityWindow(center, width)
        except ValueError as exc:
            raise CliError(f"--window {args.window!r}: {exc}") from None
    elif args.preset is not None:
        window = WINDOW_PRESETS[args.preset]
    if not is_volume_path(args.video):
        given = [flag for flag, on in (("--window", args.window), ("--preset", args.preset), ("--axis", args.axis != 2)) if on]
        if given:
            raise CliError(f"{given[0]} is for 3-D volumes (a .nii/.nii.gz file or a DICOM folder), not {args.video}")
        return None
    for flag, on in (("--stream", args.stream), ("--reverse", args.reverse), ("--everything", args.everything)):
        if on:
            raise CliError(f"{flag} is not available for 3-D volumes: prompts are propagated both ways from the first prompted slice")
    try:
        volume = load_volume(args.video)
    except ImportError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    from ..video.sources import VolumeFrameSource

    return VolumeFrameSource(volume, image_size, axis=args.axis, window=window)


class _RefiningWriter:
    """A mask writer whose masks are refined (:class:`~samstream.image.refine.MaskRefiner`) on
    their frame first."""

    def __init__(self, writer, refiner, source) -> None:
        self.writer, self.refiner, self.source = writer, refiner, source

    def write(self, frame_idx: int, obj_ids, masks: np.ndarray) -> None:
        from ..image.refine import refine_all

        self.writer.write(frame_idx, obj_ids, refine_all(self.refiner, self.source.get_rgb(frame_idx), masks))

    def __enter__(self):
        self.writer.__enter__()
        return self

    def __exit__(self, *exc):
        return self.writer.__exit__(*exc)


def _track_volume(args, model, options, source, prompts, mask_prompts, writer, refiner=None) -> int:
    """Propagate forward from the first prompted slice, then backward from it; write the
    per-slice masks in slice order, ``labels.nii.gz`` and ``volume.json``. Returns the slices written."""
    from ..io.atomic import atomic_write_json
    from ..io.volumes import save_label_nifti
    from ..video.predictor import VideoPredictor
    from ..video.sources.volume import slice_plane

    predictor = VideoPredictor(model, options)
    session = _open_prompted_session(predictor, source, prompts, mask_prompts)
    first = min(frame for frame, _ in prompts)
    volume = source.volume
    labels = np.zeros(volume.data.shape, dtype=np.uint16)
    done: dict[int, tuple[list[int], np.ndarray]] = {}
    for reverse in (False, True):
        for frame_idx, obj_ids, logits in predictor.propagate(session, start_frame_idx=first, reverse=reverse):
            if frame_idx not in done:
                masks = (logits[:, 0] > 0).cpu().numpy()
                if refiner is not None:
                    from ..image.refine import refine_all

                    masks = refine_all(refiner, source.get_rgb(frame_idx), masks)
                done[frame_idx] = (list(obj_ids), masks)
    for frame_idx in sorted(done):
        obj_ids, masks = done[frame_idx]
        writer.write(frame_idx, obj_ids, masks)
        plane = slice_plane(labels, source.axis, frame_idx)
        for obj, mask in zip(obj_ids, masks):
            plane[mask] = obj
    save_label_nifti(args.output_dir / "labels.nii.gz", labels, volume)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    summary = {
        "source": volume.source,
        "shape": list(volume.data.shape),
        "spacing_mm": list(volume.spacing),
        "axis": source.axis,
        "window": {"center": source.window.center, "width": source.window.width},
        "voxel_ml": volume.voxel_ml,
        "objects": {str(int(i)): {"voxels": int(c), "ml": float(c) * volume.voxel_ml} for i, c in zip(ids, counts)},
    }
    atomic_write_json(args.output_dir / "volume.json", summary, indent=2)
    for obj, info in summary["objects"].items():
        print(f"object {obj}: {info['voxels']} voxels, {info['ml']:.2f} mL")
    return len(done)


def _everything_options(args: argparse.Namespace):
    """The generator config and discovery options of --everything, checked (before the model loads)."""
    from ..image.automatic import AutomaticMaskConfig
    from ..video.everything import DiscoveryOptions

    try:
        config = AutomaticMaskConfig(
            points_per_side=args.points_per_side,
            pred_iou_thresh=args.pred_iou_thresh,
            stability_score_thresh=args.stability_score_thresh,
            max_image_megapixels=args.max_pixels / 1e6,
        )
        discovery = DiscoveryOptions(
            detect_every=args.detect_every,
            new_object_iou=args.new_object_iou,
            max_objects=args.max_objects,
            drop_after=args.drop_after,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return config, discovery


def _everything_tracker(args: argparse.Namespace, model, options, memory="default"):
    from ..image.automatic import AutomaticMaskGenerator
    from ..video.everything import EverythingTracker
    from ..video.predictor import VideoPredictor

    config, discovery = _everything_options(args)
    return EverythingTracker(VideoPredictor(model, options, memory=memory), AutomaticMaskGenerator(model, config), discovery)


def _text_tracker(args: argparse.Namespace, model, options, proposer, phrases, memory="default"):
    """The tracker of --text: the detector's boxes on detection frames become masks of new objects."""
    from ..image.predictor import ImagePredictor
    from ..image.text import TextSegmenter
    from ..video.discovery import TextFinder
    from ..video.everything import EverythingTracker
    from ..video.predictor import VideoPredictor

    config, discovery = _everything_options(args)
    if proposer is None:  # a proposer that runs on the SAM model (--detector automatic)
        proposer = proposer_from_args(args, sam_model=model, automatic_config=config)
    segmenter = TextSegmenter(ImagePredictor(model), proposer)
    return EverythingTracker(VideoPredictor(model, options, memory=memory), TextFinder(segmenter, phrases), discovery)


def _write_objects(args: argparse.Namespace, tracker, phrases) -> None:
    from ..io.labels import OBJECTS_FILE, write_object_labels

    proposer = tracker.finder.segmenter.proposer
    write_object_labels(
        args.output_dir / OBJECTS_FILE,
        tracker.discovery.objects,
        detector=getattr(proposer, "source", "") or args.detector,
        phrases=phrases,
    )
