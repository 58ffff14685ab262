"""Dataset inference on a Ray cluster: a Ray Data pipeline over videos, one model per actor.

Needs the optional extra ``samstream[ray]``; this module is imported only when ``--ray`` is
used. Videos already complete are skipped before the pipeline starts; every video comes back
as a :class:`~samstream.eval.runner.VideoOutcome` (failures included, with their error).
Actors get one GPU each when the cluster has enough (a share of one when it has fewer), and
a fraction of a CPU when the cluster has fewer CPUs than actors.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .layouts import VideoInput
from .runner import InferenceConfig, ModelSpec, VideoOutcome, infer_video, make_predictor, split_complete

__all__ = ["run_dataset_ray", "actor_resources", "VideoActor"]


def actor_resources(cluster: dict, actors: int) -> tuple[float, float]:
    """(CPUs, GPUs) per actor for ``actors`` actors on a cluster with ``cluster`` resources."""
    cpus = float(cluster.get("CPU", 1.0))
    gpus = float(cluster.get("GPU", 0.0))
    per_cpu = min(1.0, cpus / actors) if cpus > 0 else 0.0
    per_gpu = 0.0 if gpus <= 0 else min(1.0, gpus / actors)
    return per_cpu, per_gpu


class VideoActor:
    """A Ray Data stateful worker: builds the model once, then runs one video per row."""

    def __init__(self, spec: ModelSpec, config: InferenceConfig, videos: Sequence[VideoInput]) -> None:
        self.spec = spec
        self.config = config
        self.videos = {v.name: v for v in videos}
        self.predictor = make_predictor(spec.build(), config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for name in batch["video"]:
            o = infer_video(self.predictor, self.videos[str(name)], self.config, autocast=self.spec.autocast())
            rows.append(o)
        return {
            "video": np.array([o.video for o in rows]),
            "status": np.array([o.status for o in rows]),
            "frames": np.array([o.frames for o in rows], dtype=np.int64),
            "objects": np.array([o.objects for o in rows], dtype=np.int64),
            "seconds": np.array([o.seconds for o in rows], dtype=np.float64),
            "error": np.array([o.error or "" for o in rows]),
        }


def run_dataset_ray(
    videos: Sequence[VideoInput],
    spec: ModelSpec,
    config: InferenceConfig,
    *,
    address: str | None = None,
    actors: int = 1,
    progress: bool = True,
) -> list[VideoOutcome]:
    """Run every incomplete video on Ray (``address``: an existing cluster; None: the
    running instance, or a new local one that is shut down afterwards)."""
    import ray
    import ray.data
    from tqdm.auto import tqdm

    if actors < 1:
        raise ValueError(f"actors must be >= 1, got {actors}")
    outcomes, todo = split_complete(videos, config)
    started_here = False
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
            started_here = True
        try:
            actors = min(actors, len(todo))
            num_cpus, num_gpus = actor_resources(ray.cluster_resources(), actors)
            if num_gpus > 0 and not str(spec.device).startswith("cuda"):
                spec = ModelSpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__}, "device": "cuda"})
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = progress
            dataset = ray.data.from_items([{"video": v.name} for v in todo], override_num_blocks=len(todo))
            results = dataset.map_batches(
                VideoActor,
                fn_constructor_kwargs={"spec": spec, "config": config, "videos": todo},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                batch_format="numpy",
            )
            bar = tqdm(total=len(todo), desc="videos (ray)", unit="video", disable=not progress)
            for row in results.iter_rows():
                name = str(row["video"])
                outcomes[name] = VideoOutcome(
                    video=name,
                    status=str(row["status"]),
                    frames=int(row["frames"]),
                    objects=int(row["objects"]),
                    seconds=float(row["seconds"]),
                    error=str(row["error"]) or None,
                )
                bar.update(1)
            bar.close()
        finally:
            if started_here:
                ray.shutdown()
    return [outcomes[v.name] for v in videos]
