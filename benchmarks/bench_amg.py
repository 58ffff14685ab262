"""Images per second of the automatic mask generator, samstream vs the reference, side by side.

    python benchmarks/bench_amg.py [--points-per-side 32] [--thresholds default|zero] [--repeats 1]

Both run the tiny SAM 2.1 architecture with the same seeded random weights (the reference
gets samstream's state dict: the parameter names are the same), in float32, on a 512x512
real image (skimage's astronaut). The reference is timed only when ``import sam2`` works in
this environment (e.g. /work/.venv-bench); otherwise only samstream's numbers are printed.

``--thresholds default`` keeps the generator defaults (pred_iou_thresh 0.8, stability 0.95):
with random weights nearly nothing passes, so this measures the model plus the filters.
``--thresholds zero`` keeps every proposal up to NMS, which is where per-mask
post-processing (RLE encoding of every proposal) weighs in.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import numpy as np
import torch


def _image(name: str, size: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    rgb = getattr(data, name)()
    if size and max(rgb.shape[:2]) != size:
        scale = size / max(rgb.shape[:2])
        hw = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(hw, Image.BILINEAR))
    return np.ascontiguousarray(rgb)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"points_per_side": args.points_per_side, "points_per_batch": args.points_per_batch}
    if args.thresholds == "zero":
        options.update(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    return options


def _time(generate: Callable[[np.ndarray], list], image: np.ndarray, repeats: int) -> tuple[float, list]:
    times, result = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = generate(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def _reference_model(state_dict: dict[str, torch.Tensor], device: str):
    try:
        from sam2.build_sam import build_sam2
    except ImportError:
        return None
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device=device)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"state dicts differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def _stub_decoder(ours_gen, reference_gen, model, image: np.ndarray, batch: int) -> None:
    """``--generator-only``: replace the image encoder and the mask decoder of both generators
    by one precomputed decoder output (the first batch of points, reused for every batch),
    so that only the generators' own work (filters, boxes, NMS, RLE, records) is timed."""
    from samstream.image.predictor import ImagePredictor
    from samstream.image.prompts import PromptTensors

    predictor = ImagePredictor(model)
    predictor.set_image(image)
    height, width = image.shape[:2]
    side = int(np.ceil(np.sqrt(batch)))
    ticks = (np.arange(side) + 0.5) / side
    grid = np.stack(np.meshgrid(ticks, ticks), -1).reshape(-1, 2)[:batch] * predictor.image_size
    coords = torch.as_tensor(grid, dtype=torch.float32)[:, None, :]
    labels = torch.ones(len(grid), 1, dtype=torch.int32)
    logits, iou, low_res = predictor.predict_tensors(PromptTensors(coords, labels, None), return_logits=True)

    def cached(count: int):
        return logits[:count], iou[:count], low_res[:count]

    ours_predictor = ours_gen._generator.predictor

    def ours_set_image(img) -> None:
        ours_predictor.embedding, ours_predictor.orig_hw = object(), [(height, width)]

    ours_predictor.set_image = ours_set_image
    ours_predictor.predict_tensors = lambda prompt, **kwargs: cached(prompt.coords.shape[0])
    if reference_gen is not None:
        reference_gen.predictor.set_image = lambda img: None
        reference_gen.predictor._predict = lambda coords, labels, *args, **kwargs: cached(coords.shape[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--thresholds", choices=("default", "zero"), default="default")
    parser.add_argument("--image", default="astronaut", help="an skimage.data image name (default: %(default)s)")
    parser.add_argument("--size", type=int, default=512, help="long side in pixels (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per implementation (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-reference", action="store_true", help="time samstream only")
    parser.add_argument(
        "--generator-only",
        action="store_true",
        help="stub the model with one cached decoder output: time only the generators' own work",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from samstream.build import build_model
    from samstream.image.automatic import SAM2AutomaticMaskGenerator
    from samstream.presets import preset_config

    torch.manual_seed(0)
    ours = build_model(preset_config("sam2.1_hiera_tiny"), device=args.device)
    image = _image(args.image, args.size)
    options = _options(args)
    print(
        f"image {args.image} {image.shape[1]}x{image.shape[0]}, sam2.1_hiera_tiny (random weights, seed 0), "
        f"float32 on {args.device}, {torch.get_num_threads()} threads, options {options}"
    )

    warm = {**options, "points_per_side": 4}
    reference = None if args.no_reference else _reference_model(ours.state_dict(), args.device)
    ours_gen = SAM2AutomaticMaskGenerator(ours, **options)
    ref_gen = None
    if reference is not None:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Reference

        ref_gen = Reference(reference, **options)
    if args.generator_only:
        _stub_decoder(ours_gen, ref_gen, ours, image, args.points_per_batch)
        print("generator-only: encoder and decoder replaced by one cached decoder output (same for both)")
    else:
        SAM2AutomaticMaskGenerator(ours, **warm).generate(image)  # warm-up
        if reference is not None:
            Reference(reference, **warm).generate(image)

    ours_s, ours_masks = _time(ours_gen.generate, image, args.repeats)
    print(f"samstream: {ours_s:8.2f} s/image  {1 / ours_s:7.4f} images/s  ({len(ours_masks)} masks)")
    if ref_gen is None:
        why = "--no-reference" if args.no_reference else "`import sam2` failed in this environment"
        print(f"reference: not timed ({why}); install sam2==1.1.0 beside samstream to compare")
        return 0
    with torch.inference_mode():
        ref_s, ref_masks = _time(ref_gen.generate, image, args.repeats)
    print(f"reference: {ref_s:8.2f} s/image  {1 / ref_s:7.4f} images/s  ({len(ref_masks)} masks)")
    print(f"speed-up (samstream images/s / reference images/s): {ref_s / ours_s:.2f}x")
    if len(ref_masks) == len(ours_masks) and ref_masks:
        a = np.sort([m["predicted_iou"] for m in ours_masks])
        b = np.sort([m["predicted_iou"] for m in ref_masks])
        print(f"same mask count; max |predicted_iou diff| {np.abs(a - b).max():.2e}")
    elif len(ref_masks) != len(ours_masks):
        print(f"mask counts differ: samstream {len(ours_masks)}, reference {len(ref_masks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
