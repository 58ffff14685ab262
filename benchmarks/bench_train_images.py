"""Training on single images: images/s with a batch's images through the model together
(`Trainer.image_batch_loss`, what `batch_size` > 1 does for image batches) against one image at
a time (`Trainer.clip_loss` per image, as before), forward and backward, in one process,
alternating batch by batch on the same batches (so both see the same machine load).

The data and prompts are those of a training run: the bundled model's architecture and weights,
synthetic images of 3-6 objects (at most `--max-objects`), clicks or boxes and one corrective
click, as in `configs/train/samstream_synthetic_stage9.yaml`.

    python benchmarks/bench_train_images.py --batch-sizes 1,4,8 --batches 6 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

from samstream.bundled import bundled_model, bundled_weights  # noqa: E402
from samstream.training.config import load_train_config  # noqa: E402
from samstream.training.data.mix import make_train_loader  # noqa: E402
from samstream.training.trainer import Trainer  # noqa: E402

IMAGES = '[{"kind": "synthetic", "synthetic_images": true, "synthetic_num_objects": [3, 6]}]'


def one_at_a_time(trainer: Trainer, model, batch, generator) -> None:
    for b in range(batch.frames.shape[0]):
        masks = batch.masks[b][:, batch.object_valid[b]]
        trainer.clip_loss(model, batch.frames[b], masks, generator).total.backward()


def together(trainer: Trainer, model, batch, generator) -> None:
    trainer._batch_loss(model, batch, generator).total.backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per batch size and way")
    parser.add_argument("--max-objects", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"machine": f"{cpu_name()}, {torch.get_num_threads()} threads", "rows": []}
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        config = load_train_config(
            None,
            [
                "model.config=samstream-synthetic",
                f"model.init={bundled_weights(bundled_model('samstream-synthetic'))}",
                f"data.datasets={IMAGES}",
                f"data.max_objects={args.max_objects}",
                "data.num_workers=0",
                "prompts.num_correction_clicks=1",
                "prompts.prob_points=1.0",
                "prompts.prob_box_given_points=0.3",
                "loss.embed_rms=1.0",
                f"batch_size={size}",
            ],
        )
        trainer = Trainer(config)
        model = trainer._build()
        loader = make_train_loader(config.data, model.image_size, size, 0, start_batch=0, num_batches=args.batches + 1,
                                   rank=0, world_size=1)
        batches = list(loader)
        seconds = {"one at a time": 0.0, "together": 0.0}
        for i, batch in enumerate(batches):
            for way, fn in (("one at a time", one_at_a_time), ("together", together)):
                model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                fn(trainer, model, batch, torch.Generator().manual_seed(i))
                if i > 0:  # the first batch warms up
                    seconds[way] += time.perf_counter() - t0
        images = args.batches * size
        row = {"batch_size": size, **{f"{way} images/s": images / s for way, s in seconds.items()}}
        row["speed-up"] = seconds["one at a time"] / seconds["together"]
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
