"""The training loop on the tiny config and synthetic clips: learning, resuming, divergence, CLI, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_config

from samstream.build import build_model
from samstream.training import trainer as trainer_module
from samstream.training.config import load_train_config
from samstream.training.model_yaml import write_reference_yaml
from samstream.training.trainer import Trainer, TrainingDivergedError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.yaml"
    write_reference_yaml(path, tiny_config())
    return path


def _config(tiny_yaml: Path, out: Path, **overrides):
    sets = {
        "output_dir": str(out),
        "model.config": str(tiny_yaml),
        "data.num_frames": 2,
        "data.max_objects": 1,
        "prompts.num_correction_clicks": 1,
        "optimizer.lr": 2e-3,
        "optimizer.image_encoder_lr_factor": 1.0,
        "optimizer.grad_clip_norm": 1.0,
        "schedule.warmup_steps": 0,
        "logging.every_steps": 1,
        "logging.progress_bar": False,
        "seed": 0,
    }
    sets.update(overrides)
    steps = sets.setdefault("steps", 4)
    sets.setdefault("schedule.total_steps", steps)
    return load_train_config(None, [f"{k}={v}" for k, v in sets.items()])


def test_loss_falls_on_a_short_run(tiny_yaml, tmp_path):
    # one synthetic clip over and over (augmented and prompted anew each time): the loss must fall
    config = _config(
        tiny_yaml, tmp_path / "run", steps=30, **{"data.datasets": '[{"kind": "synthetic", "length": 1}]'}
    )
    result = Trainer(config).run()
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-6:]) <= 0.7 * np.mean(losses[:6]), losses
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,lr,loss") and len(log) == 31
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_interrupted_run_resumes_where_it_stopped(tiny_yaml, tmp_path, monkeypatch):
    straight = Trainer(_config(tiny_yaml, tmp_path / "a", steps=4, **{"checkpoint.every_steps": 2})).run()
    want = build_model(straight.final_dir / "model.yaml", straight.final_dir / "model.pt", accel=None).state_dict()

    calls = {"n": 0}
    original = trainer_module.clip_gradients

    def interrupt_at_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    config = _config(tiny_yaml, tmp_path / "b", steps=4, **{"checkpoint.every_steps": 2})
    monkeypatch.setattr(trainer_module, "clip_gradients", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config).run()
    assert torch.load(tmp_path / "b" / "resume.pt", weights_only=True)["step"] == 2

    def log_steps() -> list[int]:
        return [int(line.split(",")[0]) for line in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]

    assert log_steps() == [1, 2, 3]  # step 3 was done and logged, but after the last checkpoint
    monkeypatch.setattr(trainer_module, "clip_gradients", original)
    resumed = Trainer(config).run()
    assert [row["step"] for row in resumed.history] == [3, 4]
    assert log_steps() == [1, 2, 3, 4]  # step 3 once: the interrupted run's row was dropped
    got = build_model(resumed.final_dir / "model.yaml", resumed.final_dir / "model.pt", accel=None).state_dict()
    diffs = {name: float((got[name].float() - t.float()).abs().max()) for name, t in want.items()}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= 1e-6, f"{worst}: {diffs[worst]}"


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_yaml, tmp_path, monkeypatch):
    config = _config(tiny_yaml, tmp_path / "run", steps=3, **{"checkpoint.every_steps": 1})
    original = trainer_module.Trainer.clip_loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        terms = original(self, *args, **kwargs)
        if calls["n"] == 2:
            terms = type(terms)(*(v * float("nan") for v in terms._values()))
        return terms

    monkeypatch.setattr(trainer_module.Trainer, "clip_loss", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"step 2: the loss is nan .*resume.pt"):
        Trainer(config).run()
    assert torch.load(tmp_path / "run" / "resume.pt", weights_only=True)["step"] == 1
    assert not (tmp_path / "run" / "final").exists()


def test_cli_train_writes_an_official_checkpoint(tiny_yaml, tmp_path):
    out = tmp_path / "cli"
    cmd = [
        sys.executable, "-m", "samstream", "train",
        "--set", f"model.config={tiny_yaml}", "--set", "steps=2", "--set", "schedule.total_steps=2",
        "--set", "schedule.warmup_steps=0", "--set", "data.num_frames=2", "--set", "logging.progress_bar=false",
        "--output-dir", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr
    assert "trained 2 steps" in done.stdout
    state = torch.load(out / "final" / "model.pt", weights_only=True)
    assert set(state) == {"model"}
    model = build_model(out / "final" / "model.yaml", out / "final" / "model.pt")  # loads strictly
    assert model.image_size == tiny_config().image_size
    bad = subprocess.run(
        [sys.executable, "-m", "samstream", "train", "--set", "optimizer.lrr=1"], capture_output=True, text=True, env=_env()
    )
    assert bad.returncode != 0 and "optimizer.lrr" in bad.stderr and "Traceback" not in bad.stderr


def test_two_processes_on_gloo(tiny_yaml, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
        "-m", "samstream", "train",
        "--set", f"model.config={tiny_yaml}", "--set", "steps=2", "--set", "schedule.total_steps=2",
        "--set", "schedule.warmup_steps=0", "--set", "data.num_frames=2", "--set", "logging.progress_bar=false",
        "--set", "logging.every_steps=1", "--output-dir", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 steps") == 2  # both ranks finish
    assert (out / "final" / "model.pt").is_file()
    assert len((out / "log.csv").read_text().splitlines()) == 3  # rank 0 alone logs: header + 2 rows


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test_embedding_penalty_is_added_to_the_clip_loss(tiny_yaml, tmp_path):
    from samstream.training.data.mix import make_train_loader
    from samstream.training.losses import embedding_rms_penalty

    base = _config(tiny_yaml, tmp_path / "a")
    with_penalty = _config(tiny_yaml, tmp_path / "b", **{"loss.embed_rms": 2.0, "loss.embed_rms_max": 0.0})
    trainer = Trainer(base)
    model = trainer._build()
    batch = next(iter(make_train_loader(base.data, model.image_size, 1, 0, num_batches=1)))
    frames, masks = batch.frames[0], batch.masks[0][:, batch.object_valid[0]]
    plain = trainer.clip_loss(model, frames, masks, torch.Generator().manual_seed(1))
    penalised = Trainer(with_penalty).clip_loss(model, frames, masks, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = 2.0 * embedding_rms_penalty(model.encode_images(frames).features[-1], 0.0)
    assert float(expected) > 0
    assert abs(float(penalised.total - plain.total) - float(expected)) < 1e-4 * max(1.0, float(expected))
    assert float(penalised.dice) == pytest.approx(float(plain.dice), abs=1e-6)


def test_freeze_image_encoder_keeps_trunk_neck_and_positions(tiny_yaml, tmp_path):
    start = build_model(tiny_yaml, accel=None, apply_postprocessing=False).state_dict()
    torch.save({"model": start}, tmp_path / "init.pt")
    config = _config(
        tiny_yaml, tmp_path / "run", steps=2,
        **{"model.freeze_image_encoder": True, "model.init": str(tmp_path / "init.pt")},
    )
    assert not any(p.requires_grad for p in Trainer(config)._build().image_encoder.parameters())
    result = Trainer(config).run()
    end = build_model(result.final_dir / "model.yaml", result.final_dir / "model.pt", accel=None).state_dict()
    encoder = [k for k in end if k.startswith("image_encoder.")]
    assert any("pos_embed" in k for k in encoder) and any(".neck." in k for k in encoder)
    assert all(torch.equal(end[k], start[k]) for k in encoder)
    assert any(not torch.equal(end[k], start[k]) for k in end if not k.startswith("image_encoder."))


def test_train_only_trains_the_named_parameters_and_nothing_else(tiny_yaml, tmp_path):
    start = build_model(tiny_yaml, accel=None, apply_postprocessing=False).state_dict()
    torch.save({"model": start}, tmp_path / "init.pt")
    head = "sam_mask_decoder.iou_prediction_head"
    config = _config(
        tiny_yaml, tmp_path / "run", steps=2, **{"model.train_only": f"[{head}]", "model.init": str(tmp_path / "init.pt")}
    )
    assert config.model.train_only == (head,)
    trainable = [n for n, p in Trainer(config)._build().named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith(head + ".") for n in trainable)
    result = Trainer(config).run()
    end = build_model(result.final_dir / "model.yaml", result.final_dir / "model.pt", accel=None).state_dict()
    assert all(torch.equal(end[k], start[k]) for k in end if not k.startswith(head + "."))
    assert any(not torch.equal(end[k], start[k]) for k in end if k.startswith(head + "."))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[sam_mask_decoder.no_such_head]", r"\['sam_mask_decoder.no_such_head'\] name no parameter.*image_encoder"),
        ("[sam_mask_decod]", "name no parameter"),  # a prefix must end at a name boundary
        ("[]", "one or more parameter-name prefixes"),
    ],
)
def test_train_only_refuses_prefixes_that_name_nothing(tiny_yaml, tmp_path, value, message):
    with pytest.raises(ValueError, match=message):
        Trainer(_config(tiny_yaml, tmp_path / "run", steps=1, **{"model.train_only": value})).run()
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_a_batch_of_images_runs_together_with_the_same_loss(tiny_yaml, tmp_path, monkeypatch):
    """Single images of a batch go through the model together (grouped by prompt kind: clicks
    and boxes), with the loss of each image as its own 1-frame clip: without corrective clicks
    the prompts are drawn in the same order, so the summed losses agree."""
    config = _config(
        tiny_yaml,
        tmp_path / "run",
        **{
            "prompts.num_correction_clicks": 0,
            "prompts.prob_box_given_points": 0.5,
            "loss.embed_rms": 1.0,  # the embedding penalty counts per image, as per clip
            "loss.embed_rms_max": 0.1,
        },
    )
    trainer = Trainer(config)
    torch.manual_seed(0)
    model = trainer._build()
    rng = np.random.default_rng(0)
    size = model.image_size
    images = torch.randn(4, 3, size, size)
    masks = []
    for n in (2, 1, 3, 1):
        gt = torch.zeros(1, n, size, size, dtype=torch.bool)
        for i in range(n):
            y, x = rng.integers(0, size - 30, size=2)
            gt[0, i, y : y + 24, x : x + 24] = True
        masks.append(gt)
    batched_calls = []
    original = trainer_module.run_images
    monkeypatch.setattr(trainer_module, "run_images", lambda *a, **k: batched_calls.append(len(a[2])) or original(*a, **k))
    together = trainer.image_batch_loss(model, images, masks, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    alone = [trainer.clip_loss(model, images[b : b + 1], masks[b], gen) for b in range(4)]
    assert sum(batched_calls) == 4 and len(batched_calls) <= 2  # one pass per prompt kind
    with torch.no_grad():  # the penalty is not zero here, so its per-image count is checked too
        embedding = model.encode_images(images).image_embed
    assert float(trainer_module.embedding_rms_penalty(embedding, 0.1)) > 1e-3
    for name in ("total", "focal", "dice", "iou", "object_score"):
        want = sum(getattr(t, name) for t in alone)
        torch.testing.assert_close(getattr(together, name), want, atol=1e-4, rtol=1e-4)


def test_image_batches_train(tiny_yaml, tmp_path):
    config = _config(
        tiny_yaml,
        tmp_path / "run",
        steps=3,
        batch_size=3,
        **{"data.datasets": '[{"kind": "synthetic", "synthetic_images": true, "synthetic_num_objects": [1, 3]}]'},
    )
    result = Trainer(config).run()
    assert len(result.history) == 3 and all(np.isfinite(row["loss"]) for row in result.history)
