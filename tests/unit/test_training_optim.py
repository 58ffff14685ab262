import pytest
import torch

from samstream.build import build_model
from samstream.training.optim import (
    NonFiniteGradientError,
    OptimizerConfig,
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
    clip_gradients,
    describe_params,
    param_groups,
    warmup_cosine_factor,
)


@pytest.fixture(scope="module")
def model():
    from tiny import tiny_config

    return build_model(tiny_config())  # random initial weights


def test_every_parameter_in_exactly_one_group(model):
    groups = param_groups(model)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())


def test_weight_decay_only_on_weights(model):
    infos = {i.name: i for i in describe_params(model)}
    assert infos["image_encoder.trunk.blocks.0.attn.qkv.weight"].weight_decay == 0.1
    assert infos["sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight"].weight_decay == 0.1
    assert infos["image_encoder.trunk.blocks.0.attn.qkv.bias"].weight_decay == 0.0
    assert infos["image_encoder.trunk.blocks.0.norm1.weight"].weight_decay == 0.0  # LayerNorm
    assert infos["sam_prompt_encoder.mask_downscaling.1.weight"].weight_decay == 0.0  # LayerNorm2d
    assert infos["memory_encoder.fuser.layers.0.norm.weight"].weight_decay == 0.0
    assert infos["image_encoder.trunk.pos_embed"].weight_decay == 0.0
    assert infos["sam_mask_decoder.mask_tokens.weight"].weight_decay == 0.0
    assert infos["no_mem_embed"].weight_decay == 0.0
    with_embeddings = {i.name: i for i in describe_params(model, OptimizerConfig(no_decay_on_embeddings=False))}
    assert with_embeddings["image_encoder.trunk.pos_embed"].weight_decay == 0.1


def test_layer_decay_decreases_toward_the_input(model):
    config = OptimizerConfig(layer_decay=0.9, image_encoder_lr_factor=1.0)
    infos = {i.name: i for i in describe_params(model, config)}
    num_blocks = 5  # stages (1, 1, 2, 1)
    factors = [infos[f"image_encoder.trunk.blocks.{i}.attn.qkv.weight"].lr_factor for i in range(num_blocks)]
    assert all(a < b for a, b in zip(factors, factors[1:]))
    assert factors[-1] == pytest.approx(0.9)
    assert factors[0] == pytest.approx(0.9**num_blocks)
    assert infos["image_encoder.trunk.patch_embed.proj.weight"].lr_factor == pytest.approx(0.9 ** (num_blocks + 1))
    assert infos["image_encoder.trunk.pos_embed"].lr_factor == 1.0
    assert infos["image_encoder.neck.convs.0.conv.weight"].lr_factor == 1.0
    assert infos["sam_mask_decoder.iou_token.weight"].lr_factor == 1.0
    scaled = {i.name: i for i in describe_params(model, OptimizerConfig(image_encoder_lr_factor=0.5))}
    assert scaled["image_encoder.neck.convs.0.conv.weight"].lr_factor == pytest.approx(0.5)
    assert scaled["sam_mask_decoder.iou_token.weight"].lr_factor == 1.0


def test_frozen_parameters_are_left_out(model):
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    try:
        names = [n for g in param_groups(model) for n in g["names"]]
        assert names and not any(n.startswith("image_encoder.") for n in names)
    finally:
        for p in model.image_encoder.parameters():
            p.requires_grad_(True)


def test_schedule_warms_up_then_decays_to_final_factor():
    config = ScheduleConfig(total_steps=100, warmup_steps=10, final_lr_factor=0.1)
    values = [warmup_cosine_factor(s, config) for s in range(101)]
    assert all(a < b for a, b in zip(values[:10], values[1:11]))
    assert values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[100] == pytest.approx(0.1)
    assert warmup_cosine_factor(55, config) == pytest.approx(0.55)


def test_scheduler_scales_every_group_from_its_own_lr(model):
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3))
    scheduler = build_scheduler(optimizer, ScheduleConfig(total_steps=10, warmup_steps=0, final_lr_factor=0.0))
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(1e-3 * group["lr_factor"] * 0.5)


def test_clip_gradients_scales_and_rejects_non_finite():
    weight = torch.nn.Parameter(torch.zeros(4))
    weight.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    assert clip_gradients([weight], 1.0) == pytest.approx(5.0)
    torch.testing.assert_close(weight.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]), atol=1e-5, rtol=0)
    weight.grad = torch.tensor([float("nan"), 0.0, 0.0, 0.0])
    with pytest.raises(NonFiniteGradientError):
        clip_gradients([weight], 1.0)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="layer_decay"):
        OptimizerConfig(layer_decay=0.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        ScheduleConfig(total_steps=10, warmup_steps=20)
