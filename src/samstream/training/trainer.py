"""The training loop: data mix -> simulated prompts -> the clip forward -> losses -> AdamW.

One :class:`Trainer` per run. It saves the resolved config beside its outputs, writes a
resume checkpoint every ``checkpoint.every_steps`` (an interrupted run started again with the
same ``output_dir`` continues where it stopped), logs to CSV (and TensorBoard when asked),
stops with a clear message on a NaN or infinite loss while the last good checkpoint stays, and
ends with an official-format checkpoint (``final/model.pt`` + ``final/model.yaml``) and the
weights as safetensors. Under ``torchrun`` it trains with DistributedDataParallel (gloo on CPU,
NCCL on GPUs), rank 0 alone writing logs and checkpoints.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..build import build_model, resolve_config
from ..checkpoint import save_safetensors
from ..io.atomic import atomic_write_bytes
from ..modeling.sam2 import FrameFeatures, SAM2Model
from ..video.clip import ClipPrompts, run_clip, run_images
from .checkpointing import load_resume_checkpoint, save_official_checkpoint, save_resume_checkpoint
from .config import TrainConfig, TrainConfigError, config_to_dict, save_train_config
from .data.mix import ClipBatch, make_train_loader
from .feature_cache import FeatureCache
from .losses import LossTerms, clip_losses, embedding_rms_penalty
from .optim import NonFiniteGradientError, build_optimizer, build_scheduler, clip_gradients
from .prompts import make_clip_correctors, sample_clip_prompts

RESUME_FILE = "resume.pt"
LOG_FILE = "log.csv"
LOG_FIELDS = ("step", "lr", "loss", "focal", "dice", "iou", "object_score", "grad_norm", "clips_per_s", "elapsed_s")


class TrainingDivergedError(FloatingPointError):
    """The loss or the gradients became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished run leaves: its folder, the final checkpoint folder, the loss history."""

    output_dir: Path
    final_dir: Path
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _distributed_from_env() -> _Dist:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK (a single process without them)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def clip_model(model: nn.Module) -> SAM2Model:
    """The SAM2Model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model  # type: ignore[return-value]


def freeze_image_encoder(model: SAM2Model) -> None:
    """No gradient for the image encoder: trunk, neck and their position embeddings."""
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)


def train_only(model: SAM2Model, prefixes: Sequence[str]) -> None:
    """Freeze every parameter whose name starts with none of ``prefixes``.

    Raises:
        TrainConfigError: a prefix that names no parameter (the message lists the model's modules).
    """
    names = [name for name, _ in model.named_parameters()]
    unmatched = [prefix for prefix in prefixes if not any(_has_prefix(name, prefix) for name in names)]
    if unmatched:
        modules = sorted({name.split(".")[0] for name in names})
        raise TrainConfigError(f"model.train_only: {unmatched} name no parameter of the model; its modules: {modules}")
    for name, param in model.named_parameters():
        if not any(_has_prefix(name, prefix) for prefix in prefixes):
            param.requires_grad_(False)


def _has_prefix(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


class Trainer:
    """Runs one training configuration (see :class:`~samstream.training.config.TrainConfig`)."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.dist = _distributed_from_env()
        self.feature_cache: FeatureCache | None = None
        self.output_dir = Path(config.output_dir)
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)

    # ------------------------------------------------------------------ set-up
    def _build(self) -> SAM2Model:
        spec = self.config.model
        # the architecture only: a bundled model's name must not bring its shipped weights along
        config, _ = resolve_config(spec.config)
        model = build_model(config, spec.init, device=self.device, apply_postprocessing=False, accel=None)
        if spec.freeze_image_encoder:
            freeze_image_encoder(model)
        if spec.train_only is not None:
            train_only(model, spec.train_only)
        return model.train()

    def _init_distributed(self) -> None:
        if self.dist.world_size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=self.dist.rank, world_size=self.dist.world_size)

    # ------------------------------------------------------------------ one clip
    def clip_loss(self, model: nn.Module, frames: torch.Tensor, masks: torch.Tensor, generator: torch.Generator) -> LossTerms:
        """Losses of one clip: frames [T, 3, S, S], masks [T, N, S, S] bool (valid objects only)."""
        cfg = self.config.prompts
        sample = sample_clip_prompts(masks, generator, cfg)
        correction_frames = sample.plan.correction_frames if cfg.num_correction_clicks > 0 else ()
        correctors = make_clip_correctors(
            masks, correction_frames, generator, prob_click_from_gt=cfg.prob_click_from_gt
        ) if correction_frames else None
        options = dict(corrector=correctors, correction_frames=correction_frames, num_correction_clicks=cfg.num_correction_clicks)
        if self.feature_cache is not None:
            options["features"] = self.feature_cache.features(clip_model(model), frames)
        weights = self.config.loss
        embeddings: list[torch.Tensor] = []
        hook = None
        if weights.embed_rms > 0:  # the image embedding, as the encoder gives it
            hook = clip_model(model).image_encoder.register_forward_hook(
                lambda module, args, out: embeddings.append(out.features[-1])
            )
        try:
            outputs = model(frames, sample.prompts, **options) if isinstance(model, nn.parallel.DistributedDataParallel) else run_clip(
                model, frames, sample.prompts, **options
            )
        finally:
            if hook is not None:
                hook.remove()
        terms = clip_losses([o.steps for o in outputs], masks, weights)
        if embeddings:
            penalty = weights.embed_rms * sum(embedding_rms_penalty(e, weights.embed_rms_max) for e in embeddings)
            terms = dataclasses.replace(terms, total=terms.total + penalty)
        return terms

    def image_batch_loss(
        self, model: nn.Module, images: torch.Tensor, masks: list[torch.Tensor], generator: torch.Generator
    ) -> LossTerms:
        """Losses of B single images, summed (each as :meth:`clip_loss` of its 1-frame clip):
        images [B, 3, S, S], masks[b] [1, N_b, S, S] bool. Their prompts are drawn image by image;
        the images prompted alike (the same number of points) go through the model together."""
        cfg = self.config.prompts
        weights = self.config.loss
        prompts, correctors = self._image_prompts(masks, generator)
        total: LossTerms | None = None
        for members in _groups_prompted_alike(prompts):
            group_images = images.index_select(0, torch.tensor(members, device=images.device))
            options = dict(
                corrector=[correctors[b] for b in members] if correctors else None,
                num_correction_clicks=cfg.num_correction_clicks,
            )
            if self.feature_cache is not None:
                options["features"] = self._cached_image_features(clip_model(model), group_images)
            embeddings: list[torch.Tensor] = []
            hook = None
            if weights.embed_rms > 0:
                hook = clip_model(model).image_encoder.register_forward_hook(
                    lambda module, args, out: embeddings.append(out.features[-1])
                )
            group_prompts = [prompts[b] for b in members]
            try:
                if isinstance(model, nn.parallel.DistributedDataParallel):
                    outputs = model(group_images, group_prompts, **options)
                else:
                    outputs = run_images(model, group_images, group_prompts, **options)
            finally:
                if hook is not None:
                    hook.remove()
            for i, (b, out) in enumerate(zip(members, outputs)):
                terms = clip_losses([out.steps], masks[b], weights)
                if embeddings:  # per image, as when each is its own clip
                    penalty = weights.embed_rms * embedding_rms_penalty(embeddings[0][i : i + 1], weights.embed_rms_max)
                    terms = dataclasses.replace(terms, total=terms.total + penalty)
                total = terms if total is None else total + terms
        assert total is not None
        return total

    def _image_prompts(self, masks: list[torch.Tensor], generator: torch.Generator) -> tuple[list[ClipPrompts], list]:
        """Each image's prompt (clicks or a box) and, with corrective clicks, its corrector."""
        cfg = self.config.prompts
        prompts, correctors = [], []
        for gt in masks:
            prompts.append(sample_clip_prompts(gt, generator, cfg).prompts[0])
            if cfg.num_correction_clicks > 0:
                correctors.append(make_clip_correctors(gt, (0,), generator, prob_click_from_gt=cfg.prob_click_from_gt)[0])
        return prompts, correctors

    def _cached_image_features(self, model: SAM2Model, images: torch.Tensor) -> FrameFeatures:
        """The images' features from the feature cache, stored per image (so any batch of them hits)."""
        assert self.feature_cache is not None
        cached = [self.feature_cache.features(model, images[i : i + 1]) for i in range(images.shape[0])]
        return FrameFeatures(
            [torch.cat(levels) for levels in zip(*(c.features for c in cached))],
            [torch.cat(levels) for levels in zip(*(c.position for c in cached))],
        )

    def _batch_loss(self, model: nn.Module, batch: ClipBatch, generator: torch.Generator) -> LossTerms:
        if batch.frames.shape[1] == 1 and batch.frames.shape[0] > 1:  # single images: together
            images = batch.frames[:, 0].to(self.device)
            masks = [batch.masks[b][:, batch.object_valid[b]].to(self.device) for b in range(batch.frames.shape[0])]
            return self.image_batch_loss(model, images, masks, generator)
        total: LossTerms | None = None
        for b in range(batch.frames.shape[0]):
            valid = batch.object_valid[b]
            frames = batch.frames[b].to(self.device)
            masks = batch.masks[b][:, valid].to(self.device)
            terms = self.clip_loss(model, frames, masks, generator)
            total = terms if total is None else total + terms
        assert total is not None
        return total

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        cfg = self.config
        self._init_distributed()
        torch.manual_seed(cfg.seed + self.dist.rank)
        main = self.dist.is_main
        model = self._build()  # a bad model section is refused before anything is written
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_train_config(self.output_dir / "config.yaml", cfg)
        if cfg.data.feature_cache is not None:
            if any(p.requires_grad for p in model.image_encoder.parameters()):
                raise TrainConfigError(
                    "data.feature_cache needs a frozen image encoder (model.freeze_image_encoder: true, "
                    "or a model.train_only without it): the features must not change"
                )
            self.feature_cache = FeatureCache(cfg.data.feature_cache, model)
        optimizer = build_optimizer(model, cfg.optimizer)
        scheduler = build_scheduler(optimizer, cfg.schedule)
        generator = torch.Generator().manual_seed(cfg.seed * 1009 + self.dist.rank)
        resume = self.output_dir / RESUME_FILE
        start = int(torch.load(resume, map_location="cpu", weights_only=True)["step"]) if resume.is_file() else 0
        wrapped: nn.Module = model
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        micro = cfg.grad_accumulation
        loader = make_train_loader(
            cfg.data,
            model.image_size,
            cfg.batch_size,
            cfg.seed,
            start_batch=start * micro,
            num_batches=cfg.steps * micro,  # the batch index where the run ends (counted from 0)
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        batches = iter(loader)  # (creating a DataLoader iterator draws from the global torch stream)
        if resume.is_file():  # last, so that building the data pipeline draws nothing from the restored streams
            load_resume_checkpoint(
                resume, model=model, optimizer=optimizer, scheduler=scheduler, generators={"prompts": generator}
            )
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()
        )
        history: list[dict[str, float]] = []
        log = _CsvLog(self.output_dir / LOG_FILE, start) if main and cfg.logging.csv else None
        board = _tensorboard(self.output_dir) if main and cfg.logging.tensorboard else None
        bar = None
        if main and cfg.logging.progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step")
        t0 = time.perf_counter()
        done_since = 0
        step = start
        while step < cfg.steps:
            optimizer.zero_grad(set_to_none=True)
            accumulated: LossTerms | None = None
            for _ in range(micro):
                batch = next(batches)
                with autocast:
                    terms = self._batch_loss(wrapped, batch, generator)
                loss = terms.total / (micro * batch.frames.shape[0])
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"step {step + 1}: the loss is {float(loss)} (clips {', '.join(batch.sources)}); "
                        f"the last good checkpoint is {resume if resume.is_file() else 'none yet'}"
                    )
                if self.dist.world_size > 1:
                    # every replica runs the same backward with every parameter in it, whatever the
                    # clip's prompts left unused (else the gradient all-reduce waits forever)
                    loss = loss + 0.0 * sum(p.sum() for p in model.parameters() if p.requires_grad)
                if loss.requires_grad:  # a clip prompted by masks on every frame has nothing to learn from
                    loss.backward()
                accumulated = terms if accumulated is None else accumulated + terms
            try:
                grad_norm = clip_gradients(model, cfg.optimizer.grad_clip_norm)
            except NonFiniteGradientError as exc:
                raise TrainingDivergedError(
                    f"step {step + 1}: {exc}; the last good checkpoint is {resume if resume.is_file() else 'none yet'}"
                ) from None
            optimizer.step()
            scheduler.step()
            step += 1
            done_since += micro * cfg.batch_size
            assert accumulated is not None
            if main:
                values = accumulated.as_floats()
                scale = 1.0 / (micro * cfg.batch_size)
                row = {
                    "step": step,
                    "lr": optimizer.param_groups[0]["lr"],
                    "loss": values["total"] * scale,
                    "focal": values["focal"] * scale,
                    "dice": values["dice"] * scale,
                    "iou": values["iou"] * scale,
                    "object_score": values["object_score"] * scale,
                    "grad_norm": float(grad_norm),
                    "clips_per_s": done_since / max(time.perf_counter() - t0, 1e-9),
                    "elapsed_s": time.perf_counter() - t0,
                }
                history.append(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", clips_s=f"{row['clips_per_s']:.2f}")
                if step % cfg.logging.every_steps == 0 or step == cfg.steps:
                    if log is not None:
                        log.write(row)
                    if board is not None:
                        for key, value in row.items():
                            if key != "step":
                                board.add_scalar(f"train/{key}", value, step)
                if step % cfg.checkpoint.every_steps == 0 or step == cfg.steps:
                    save_resume_checkpoint(
                        resume,
                        step=step,
                        model=model,
                        optimizer=optimizer,
                        scheduler=scheduler,
                        generators={"prompts": generator},
                        extra={"config": config_to_dict(cfg)},
                    )
                every = cfg.checkpoint.keep_official_every
                if every and step % every == 0 and step != cfg.steps:
                    save_official_checkpoint(self.output_dir / f"step_{step:07d}", model, model.config)
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()
        final = self.output_dir / "final"
        if main:
            save_official_checkpoint(final, model, model.config)
            save_safetensors(model, final / "model.safetensors")
            atomic_write_bytes(final / "DONE", f"{step}\n".encode())
        if self.dist.world_size > 1:
            dist.barrier()
        return TrainResult(self.output_dir, final, step, history)


def _groups_prompted_alike(prompts: Sequence[ClipPrompts]) -> list[list[int]]:
    """Indices of the prompts that can share a decoder batch: the same number of points (or masks)."""
    groups: dict[str, list[int]] = {}
    for b, prompt in enumerate(prompts):
        key = "mask" if prompt.point_labels is None else f"{prompt.point_labels.shape[1]} points"
        groups.setdefault(key, []).append(b)
    return list(groups.values())


class _CsvLog:
    """Rows appended to a CSV file, flushed after each (a killed run keeps every full row).

    A run that starts at ``start`` (0, or the step of its resume checkpoint) first drops the
    rows an earlier, interrupted run wrote after that step (and a half-written last line), so
    the log has each step once.
    """

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path = path
        if path.is_file() and path.stat().st_size > 0:
            _keep_rows_up_to(path, start)
        new = not path.is_file() or path.stat().st_size == 0
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_FIELDS)
        if new:
            self._writer.writeheader()

    def write(self, row: dict[str, float]) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()})
        self._file.flush()


def _keep_rows_up_to(path: Path, step: int) -> None:
    """Rewrite the CSV log at path (atomically) with only its full rows of steps <= step."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if None not in r.values() and str(r.get("step", "")).isdigit()]
    kept = [r for r in rows if int(r["step"]) <= step]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_bytes(path, buffer.getvalue().encode())


def _tensorboard(output_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # tensorboard not installed
        raise RuntimeError("logging.tensorboard needs the tensorboard package: pip install tensorboard") from exc
    return SummaryWriter(str(output_dir / "tensorboard"))
