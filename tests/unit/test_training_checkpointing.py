import random

import numpy as np
import pytest
import torch

from samstream.build import build_model
from samstream.config import load_config
from samstream.presets import preset_config
from samstream.training.checkpointing import (
    load_resume_checkpoint,
    save_official_checkpoint,
    save_resume_checkpoint,
)
from samstream.training.model_yaml import write_reference_yaml
from samstream.training.optim import OptimizerConfig, ScheduleConfig, build_optimizer, build_scheduler


@pytest.fixture(scope="module")
def tiny():
    from tiny import tiny_config

    config = tiny_config()
    return config, build_model(config)


def _draws(generator):
    return (
        random.random(),
        float(np.random.rand()),
        float(torch.rand(())),
        float(torch.rand((), generator=generator)),
    )


def test_resume_round_trip_restores_every_stream_and_state(tmp_path, tiny):
    config, model = tiny
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3))
    scheduler = build_scheduler(optimizer, ScheduleConfig(total_steps=20, warmup_steps=2))
    # one real step so that the optimizer has moments
    loss = sum(p.float().pow(2).sum() for p in model.sam_mask_decoder.parameters())
    loss.backward()
    optimizer.step()
    scheduler.step()
    prompt_gen = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = tmp_path / "resume.pt"
    save_resume_checkpoint(path, step=7, model=model, optimizer=optimizer, scheduler=scheduler,
                           generators={"prompts": prompt_gen}, extra={"note": "x"})
    expected = _draws(prompt_gen)
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}
    lr_before = [g["lr"] for g in optimizer.param_groups]

    # a fresh run: other weights, optimizer, scheduler and streams
    other = build_model(config)
    other_opt = build_optimizer(other, OptimizerConfig(lr=1e-3))
    other_sched = build_scheduler(other_opt, ScheduleConfig(total_steps=20, warmup_steps=2))
    other_gen = torch.Generator().manual_seed(99)
    random.seed(10), np.random.seed(20), torch.manual_seed(30)
    state = load_resume_checkpoint(path, model=other, optimizer=other_opt, scheduler=other_sched,
                                   generators={"prompts": other_gen})
    assert state.step == 7 and state.extra == {"note": "x"}
    assert _draws(other_gen) == expected
    for name, tensor in other.state_dict().items():
        torch.testing.assert_close(tensor, weights_before[name], rtol=0, atol=0)
    assert [g["lr"] for g in other_opt.param_groups] == lr_before
    assert other_sched.last_epoch == scheduler.last_epoch
    a = optimizer.state_dict()["state"]
    b = other_opt.state_dict()["state"]
    assert a.keys() == b.keys()
    key = next(iter(a))
    torch.testing.assert_close(a[key]["exp_avg"], b[key]["exp_avg"], rtol=0, atol=0)


def test_resume_errors(tmp_path, tiny):
    _, model = tiny
    with pytest.raises(FileNotFoundError):
        load_resume_checkpoint(tmp_path / "missing.pt", model=model)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pt"):
        load_resume_checkpoint(corrupt, model=model)


def test_official_checkpoint_loads_back(tmp_path, tiny):
    config, model = tiny
    weights = save_official_checkpoint(tmp_path, model, config)
    payload = torch.load(weights, weights_only=True)
    assert set(payload) == {"model"}
    reloaded = build_model(tmp_path / "model.yaml", weights)
    for name, tensor in reloaded.state_dict().items():
        torch.testing.assert_close(tensor, model.state_dict()[name], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["sam2.1_hiera_tiny", "sam2_hiera_large"])
def test_reference_yaml_round_trips_presets(tmp_path, name):
    config = preset_config(name)
    write_reference_yaml(tmp_path / "m.yaml", config)
    loaded, _ = load_config(tmp_path / "m.yaml")
    assert loaded == config
