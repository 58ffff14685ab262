"""Why memory strategies gain little with a look-alike nearby: how the default tracker fails on
those frames, and what an oracle choice among the heads' candidates would gain.

On bench_memory's videos of one scenario (default: ``crossing``, look-alikes moving across the
targets), every object visible on frame 0 is prompted with its mask and tracked twice:

  default   the reference's choice (best predicted IoU)
  oracle    on every tracked frame, the candidate closest (IoU at mask resolution) to the
            ground truth: the best any rule choosing among the candidates could do

It prints, on the (object, frame) pairs with a look-alike nearby: the default's mean IoU, the
share of frames where its mask overlaps the object by less than 0.1 IoU, the share where the
mask is more than 1.5x the object's area, and J&F of both choices (bench_memory's scoring).

    python benchmarks/probe_lookalike.py --model samstream-synthetic
"""

from __future__ import annotations

import argparse
import platform
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bench_memory import _Tally, make_videos, track
from samstream.build import build_model
from samstream.eval.metrics import jaccard
from samstream.video.memory import Candidates, DefaultMemory, Keep, MemoryPolicy, register_strategy

ORACLE = "lookalike-probe-oracle"


class OracleChoice(DefaultMemory):
    """The default memory, but each frame's output is the candidate nearest the ground truth
    ``truth[frame, obj_id - 1]`` ([T, N, H, W] bool, set before each video)."""

    name = ORACLE
    truth: np.ndarray | None = None

    def new_object_state(self, obj_id: int) -> Any:
        return obj_id

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: Any) -> Sequence[Keep]:
        cand = proposals[0]
        gt = torch.from_numpy(OracleChoice.truth[frame_idx, state - 1]).float()[None, None]
        gt = F.interpolate(gt, size=cand.low_res_masks.shape[-2:], mode="area")[0, 0] > 0.5
        masks = (cand.low_res_masks > 0).cpu().numpy()
        ious = jaccard(np.broadcast_to(gt.numpy(), masks.shape), masks)
        return (Keep(parent=0, candidate=int(np.argmax(ious))),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="samstream-synthetic")
    parser.add_argument("--config", default=None, help="a model YAML (with --checkpoint)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--scenario", default="crossing")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.config or args.model
    model = build_model(name, args.checkpoint, for_video=True, download=args.config is None)
    register_strategy(ORACLE, lambda config: OracleChoice(MemoryPolicy.from_config(config)))
    videos = make_videos(args.videos, args.frames, args.size, [args.scenario])
    tallies = {"default": _Tally(), "oracle": _Tally()}
    ious, ratios = [], []
    with torch.inference_mode():
        for video in videos:
            clip = video.clip
            pred, ids, seconds, count = track(model, "default", clip)
            tallies["default"].add(video, pred, ids, seconds, count)
            near = video.categories["distractor nearby"]
            for k, n in enumerate(ids):
                for t in range(1, pred.shape[0] - 1):  # bench_memory leaves out the first and last frame
                    if near[t, n]:
                        ious.append(float(jaccard(clip.masks[t, n], pred[t, k])))
                        ratios.append(pred[t, k].sum() / max(clip.masks[t, n].sum(), 1))
            OracleChoice.truth = clip.masks
            tallies["oracle"].add(video, *track(model, ORACLE, clip))
    ious, ratios = np.array(ious), np.array(ratios)
    reports = {k: t.report() for k, t in tallies.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; model {name}")
    print(f"{len(videos)} '{args.scenario}' videos of {args.frames} frames; {len(ious)} object-frames with a look-alike nearby")
    print(f"default: mean IoU {ious.mean():.3f}; IoU < 0.1 on {100 * (ious < 0.1).mean():.0f} %; "
          f"area > 1.5x the object's on {100 * (ratios > 1.5).mean():.0f} %")
    for k, r in reports.items():
        print(f"{k:8s} J&F {r['J&F']}  with a look-alike nearby {r['J&F distractor nearby']}")


if __name__ == "__main__":
    main()
