"""Does a model see where it is clicked? The numbers behind the bundled model's two-stage recipe.

For one held-out synthetic image, clicks at four far-apart places: the mean absolute change of
the mask logits between clicks (against their spread over the pixels), where each click's
strongest logit lands, and the per-token norm of the image embedding the decoder attends to
(against the norm of the positional encoding it shares with the clicks). A prompt-blind model
puts every click's peak at the same place and moves the logits by a tiny fraction of their spread.

    python benchmarks/probe_prompt_sensitivity.py --model samstream-synthetic
    python benchmarks/probe_prompt_sensitivity.py --config model.yaml --checkpoint runs/x/final/model.pt
"""

from __future__ import annotations

import argparse
import json

import torch

from machine import cpu_name

from samstream.build import build_model
from samstream.training.synthetic import make_image
from samstream.video.clip import ClipPrompts, run_clip

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--seed", type=int, default=10_000_003, help="the held-out image")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name = args.model or args.config
    if name is None:
        parser.error("give --model or --config")
    model = build_model(name, args.checkpoint, apply_postprocessing=False, accel=None).eval()
    s = model.image_size
    image = make_image(args.seed).frames[0]
    x = (torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 - _MEAN) / _STD
    x = torch.nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
    clicks = torch.tensor([[[0.16, 0.16]], [[0.78, 0.78]], [[0.16, 0.78]], [[0.5, 0.5]]]) * s
    prompts = {0: ClipPrompts(point_coords=clicks, point_labels=torch.ones(4, 1, dtype=torch.int32))}
    with torch.no_grad():
        logits = run_clip(model, x, prompts)[0].steps[0].multimask_logits  # [4, M, h, w]
        embedding = model.add_no_memory_embedding(model.encode_images(x).image_embed)
    peaks = []
    for k in range(4):
        best = logits[k].amax(0)
        y, xx = divmod(int(best.argmax()), best.shape[-1])
        peaks.append([xx * s / best.shape[-1], y * s / best.shape[-2]])
    report = {
        "machine": cpu_name(),
        "model": name,
        "logit spread (std over pixels)": float(logits.std()),
        "mean |logit change| between clicks": float(((logits[0] - logits[1]).abs().mean() + (logits[2] - logits[3]).abs().mean()) / 2),
        "clicks (x, y)": clicks[:, 0].tolist(),
        "peak of each click's logits (x, y)": peaks,
        "image embedding norm per token": float(embedding.norm(dim=1).mean()),
        "positional encoding norm per token": float(model.sam_prompt_encoder.get_dense_pe().norm(dim=1).mean()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
