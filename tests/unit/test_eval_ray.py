"""Ray Data inference on a local Ray instance: 2 tiny videos, 2 actors, the tiny model.

Runs in a subprocess with a timeout, so a stuck cluster fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from samstream.checkpoint import save_safetensors
from samstream.eval.layouts import list_videos, read_id_png
from samstream.eval.ray_runner import actor_resources
from samstream.eval.runner import InferenceConfig, ModelSpec, run_dataset
from samstream.eval.synthetic import make_synthetic_dataset

RAY_TIMEOUT_S = 240

SCRIPT = textwrap.dedent(
    """
    import json, pickle, sys
    import ray
    from samstream.eval.ray_runner import run_dataset_ray

    videos, spec, config = pickle.load(open(sys.argv[1], "rb"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcomes = run_dataset_ray(videos, spec, config, actors=2, progress=False)
    finally:
        ray.shutdown()
    print("OUTCOMES" + json.dumps([[o.video, o.status, o.frames, o.error] for o in outcomes]))
    """
)


def test_actor_resources_share_small_machines():
    assert actor_resources({"CPU": 2.0}, 4) == (0.5, 0.0)
    assert actor_resources({"CPU": 16.0, "GPU": 2.0}, 2) == (1.0, 1.0)
    assert actor_resources({"CPU": 16.0, "GPU": 1.0}, 4) == (1.0, 0.25)


def test_ray_data_pipeline_on_a_local_instance(tmp_path, tiny_model):
    pytest.importorskip("ray.data")
    import pickle

    make_synthetic_dataset(tmp_path / "ds", "davis")
    videos = list_videos(tmp_path / "ds", "davis")
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(tiny_model, weights)
    spec = ModelSpec(model=tiny_model.config, checkpoint=weights, threads=1)
    config = InferenceConfig(output_dir=tmp_path / "ray")
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps((videos, spec, config)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    env["RAY_AUTH_MODE"] = "disabled"
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(job)], capture_output=True, text=True, timeout=RAY_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the Ray run did not finish within {RAY_TIMEOUT_S} s: {exc.stderr[-2000:] if exc.stderr else ''}")
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("OUTCOMES"))
    outcomes = json.loads(line[len("OUTCOMES") :])
    assert outcomes == [["video00", "done", 4, None], ["video01", "done", 4, None]]
    # the same masks as one local process
    local = InferenceConfig(output_dir=tmp_path / "local")
    run_dataset(videos, spec, local, progress=False)
    for video in videos:
        for stem in video.frame_names:
            np.testing.assert_array_equal(
                read_id_png(tmp_path / "ray" / video.name / f"{stem}.png"),
                read_id_png(tmp_path / "local" / video.name / f"{stem}.png"),
            )
