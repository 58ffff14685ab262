"""Low-memory fine-tuning: clips/s and peak memory of a frozen-encoder run with and without the
feature cache (`data.feature_cache`), each in a fresh process, same data and steps.

The data: `--clips` fixed synthetic images (augmentation off, so each clip repeats exactly),
`--steps` steps; the cached run computes each clip's features once (the first epoch) and reads
them from disk afterwards. Reported clips/s are over the steps after the first epoch.

    python benchmarks/bench_feature_cache.py --model samstream-synthetic --clips 20 --steps 80
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time, torch
from samstream.training.config import load_train_config
from samstream.training.trainer import Trainer
torch.set_num_threads(int(sys.argv[2]))
config = load_train_config(None, json.loads(sys.argv[1]))
result = Trainer(config).run()
rows = result.history
skip = int(sys.argv[3])
steady = rows[skip:]
rate = (len(steady) * config.batch_size) / max(steady[-1]["elapsed_s"] - rows[skip - 1]["elapsed_s"], 1e-9)
print(json.dumps({"clips_per_s": rate, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(sets: list[str], threads: int, skip: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sets), str(threads), str(skip)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="samstream-synthetic", help="the architecture (a name or a YAML)")
    parser.add_argument("--init", default=None, help="weights to start from (default: the model's own, if bundled)")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.steps <= args.clips:
        parser.error("--steps must exceed --clips (the first epoch fills the cache)")
    with tempfile.TemporaryDirectory() as tmp:
        common = [
            f"model.config={args.model}", "model.freeze_image_encoder=true", f"steps={args.steps}",
            f"schedule.total_steps={args.steps}", "schedule.warmup_steps=0", "data.num_frames=1", "data.max_objects=3",
            f'data.datasets=[{{"kind": "synthetic", "length": {args.clips}, "synthetic_images": true}}]',
            "data.augment.hflip_prob=0", "data.augment.scale_range=[1.0, 1.0]", "data.augment.brightness=0",
            "data.augment.contrast=0", "data.augment.saturation=0", "logging.progress_bar=false",
            "prompts.num_correction_clicks=1",
        ]
        if args.init:
            common.append(f"model.init={args.init}")
        plain = run(common + [f"output_dir={tmp}/plain"], args.threads, args.clips)
        cached = run(common + [f"output_dir={tmp}/cached", f"data.feature_cache={tmp}/cache"], args.threads, args.clips)
    print(json.dumps({"without cache": plain, "with cache": cached,
                      "speed-up": cached["clips_per_s"] / plain["clips_per_s"]}, indent=2))


if __name__ == "__main__":
    main()
