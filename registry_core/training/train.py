"""The generic trainer: any registered model on any registered dataset.

It touches a model only through the core's contract: ``create(name, num_classes,
in_chans)``, the metadata (input size, mean/std, interpolation) and
``classification_loss``, which adds the auxiliary losses a model's spec declares. A
run is a pure function of its configuration: the data order and the random stream are
derived from ``(seed, epoch, step, rank)``, so a run resumed from a checkpoint ends
with the same weights as one never interrupted, and N processes under ``torchrun``
compute what one process computes with the same global batch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..errors import TrainingError
from ..model.compose import classification_loss, main_logits
from ..weights.model_files import save
from .data import ShardedBatches, available_cores, image_size_for, load_dataset, make_loader, normalize
from .distributed import Distributed
from .evaluate import evaluate_loader
from .finetune import WeightsEma, freeze, frozen_modules, hold_frozen, model_for, parameter_groups
from .progress import Progress
from .state import STATE_FILE, load_state, save_state, write_curves, write_json, write_metrics
from .transforms import POLICIES, Augmented, batch_mix, default_policy, eval_transform, train_transform, trained_data_config

OPTIMIZERS = {"sgd": (0.05, 5e-4), "adamw": (1e-3, 0.05)}  # default (lr, weight decay)
SCHEDULES = ("cosine", "step", "none")
RESUMABLE = {"epochs", "max_steps", "workers", "checkpoint_every", "log_every"}


@dataclass
class TrainConfig:
    """Every option of a run; see ``docs/training.md``. ``batch_size`` is the global
    batch per forward pass (split across processes); one optimiser step sees
    ``batch_size * accum_steps`` images."""

    model: str
    dataset: str = "digits"
    out: str | None = None
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    step_epochs: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    accum_steps: int = 1
    seed: int = 0
    image_size: int | None = None
    augment: str | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    ema: float | None = None
    weights: str | None = None
    pretrained: bool = False
    freeze: str | None = None
    head_lr_mult: float = 1.0
    channels_last: bool = False
    amp: str | None = None
    compile: bool = False
    workers: int | None = None
    checkpoint_every: int = 0
    log_every: int = 50
    device: str | None = None

    def __post_init__(self):
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": (None, "bf16", "fp16"),
                   "augment": (None, *POLICIES)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainingError(f"{name} must be one of {', '.join(map(str, allowed))}, got {getattr(self, name)!r}")
        positive = ("epochs", "batch_size", "accum_steps", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainingError(f"max_steps must be at least 1, got {self.max_steps}")
        if not 0 <= self.label_smoothing < 1:
            raise TrainingError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixup < 0 or self.cutmix < 0 or self.head_lr_mult <= 0 or not 0 < (self.ema or 0.5) < 1:
            raise TrainingError("mixup and cutmix must be at least 0, head_lr_mult above 0 and ema in (0, 1)")
        if self.weights and self.pretrained:
            raise TrainingError("give weights (a file) or pretrained (the store's file), not both")

    @property
    def base_lr(self) -> float:
        return OPTIMIZERS[self.optimizer][0] if self.lr is None else self.lr


class Trainer:
    """One run: the model, its data, optimiser and schedule, and the loop over them.

    Nothing is written until ``fit()``; with ``out=None`` nothing is written at all.
    ``create_options`` (resuming) rebuilds the recorded architecture without reading
    the ``weights`` file again: the state holds the weights.
    """

    def __init__(self, config: TrainConfig, create_options: dict[str, Any] | None = None):
        self.config = config
        self.dist = Distributed.from_environment(config.device)
        if config.amp == "fp16" and self.dist.device.type != "cuda":
            raise TrainingError("amp fp16 needs a GPU (its gradient scaler is for CUDA); on a CPU use --amp bf16")
        data = load_dataset(config.dataset, config.data_root, **config.data_options)
        self.classes = data.classes
        torch.manual_seed(config.seed)
        model = model_for(config.model, data.classes, data.channels, weights=config.weights, pretrained=config.pretrained,
                          options=config.model_options, recorded=create_options)
        self.frozen = frozen_modules(model, config.freeze)
        freeze(model, self.frozen)
        self.image_size = image_size_for(config.model, config.image_size, model.meta)
        model.class_names, model.data_config = list(data.classes), trained_data_config(model.data_config, self.image_size)
        self.data_config = model.data_config
        self.model = model.to(self.dist.device, memory_format=_memory_format(config))  # type: ignore[call-overload]
        self.net: Any = self.dist.wrap(self.model)
        if config.compile:
            self.net = torch.compile(self.net)
        self.optimizer = _optimizer(config, self.model)
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=config.amp == "fp16")
        self.ema = WeightsEma(self.model, config.ema) if config.ema else None
        self.mix = batch_mix(config.mixup, config.cutmix, len(data.classes))
        self.workers = config.workers if config.workers is not None else 0 if data.in_memory else available_cores()
        size, crop, mode = self.image_size, self.data_config.crop_pct, self.data_config.interpolation
        self.augment = config.augment or data.augment or default_policy(size)
        self.train_set = Augmented(data.train, train_transform(self.augment, size, crop, mode),
                                   seed=None if self.augment == "none" else config.seed)
        self.val_set = Augmented(data.val, eval_transform(size, crop, mode))
        self.steps_per_epoch = len(self._batches(0)) // config.accum_steps
        if self.steps_per_epoch == 0:
            raise TrainingError(
                f"{config.dataset!r} has {len(data.train)} training images, fewer than one step's "  # type: ignore[arg-type]
                f"{config.batch_size * config.accum_steps} (batch size x accumulation steps)"
            )
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch) if config.schedule == "cosine" else 0
        self.criterion = partial(F.cross_entropy, label_smoothing=config.label_smoothing)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_top1 = self.best_ema_top1 = -1.0
        self.epoch_sums = {"loss": 0.0, "correct": 0, "seen": 0}

    # -- the schedule and one optimiser step ------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate for optimiser step ``step`` (counting from 0)."""
        c, base = self.config, self.config.base_lr
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        if c.schedule == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            return base * 0.5 * (1 + math.cos(math.pi * (step - self.warmup_steps) / span))
        if c.schedule == "step":
            return base * c.gamma ** (step // (c.step_epochs * self.steps_per_epoch))
        return base

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize(images.to(self.dist.device, non_blocking=True), self.data_config.mean, self.data_config.std)
        return x.contiguous(memory_format=_memory_format(self.config))

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One optimiser step over ``accum_steps`` micro-batches: ``(loss sum, correct, images)``."""
        self.net.train()
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        hold_frozen(self.model, self.frozen)
        loss_sum = torch.zeros((), device=self.dist.device)
        correct = torch.zeros((), device=self.dist.device, dtype=torch.long)
        seen = 0
        for i, (images, targets) in enumerate(batches):
            x, y = self._inputs(images), targets.to(self.dist.device, non_blocking=True)
            if self.mix is not None:  # soft targets; accuracy counts each image's larger share
                x, target = self.mix(x, y)
                y = target.argmax(1)
            else:
                target = y
            with self.dist.no_sync(i < len(batches) - 1):
                with self.dist.autocast(self.config.amp):
                    output = self.net(x)
                    loss = classification_loss(output, target, self.criterion)
                self.scaler.scale(loss / len(batches)).backward()
            loss_sum += loss.detach().float() * len(y)
            correct += (main_logits(output).detach().argmax(1) == y).sum()
            seen += len(y)
        if self.config.clip_grad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return loss_sum, correct, seen

    # -- the loop ------------------------------------------------------------------------
    def _batches(self, epoch: int, skip: int = 0) -> ShardedBatches:
        c = self.config
        return ShardedBatches(len(self.train_set), c.batch_size, rank=self.dist.rank, world=self.dist.world,
                              shuffle=True, seed=c.seed, epoch=epoch, skip=skip)

    def _loader(self, dataset, batches: ShardedBatches) -> DataLoader:
        dataset.set_epoch(batches.epoch)  # before the workers take their copy
        return make_loader(dataset, batches, self.workers, self.dist.device, self.config.seed + batches.epoch)

    def _reseed(self) -> None:
        """The random stream (dropout, stochastic depth) restarts from ``(seed, rank, step)``
        at each epoch and checkpoint, so resuming needs no saved generator state."""
        torch.manual_seed((self.config.seed * 1_000_003 + self.dist.rank) * 1_000_003 + self.step)

    def fit(self) -> Trainer:
        """Train until ``epochs`` or ``max_steps``, validating and checkpointing each epoch."""
        c, out = self.config, self._out()
        progress = Progress(self.dist.is_main, c.log_every)
        try:
            while self.step < self.total_steps:
                epoch, done = divmod(self.step, self.steps_per_epoch)
                self._reseed()
                remaining = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch) - done
                loader = iter(self._loader(self.train_set, self._batches(epoch, done * c.accum_steps)))
                bar = progress.epoch(epoch + 1, remaining, done)
                started, images = time.perf_counter(), 0
                for _ in range(remaining):
                    loss, correct, seen = self.train_step([next(loader) for _ in range(c.accum_steps)])
                    self._add(loss, correct, seen)
                    images += seen * self.dist.world
                    rate = images / (time.perf_counter() - started)
                    bar.update(self.epoch_sums, rate, self.lr_at(self.step - 1))
                    at_epoch_end = self.step % self.steps_per_epoch == 0 or self.step == self.total_steps
                    if c.checkpoint_every and not at_epoch_end and self.step % c.checkpoint_every == 0:
                        if out:
                            self._save(out, new_best=False)
                        self._reseed()
                bar.close()
                self._end_epoch(epoch + 1, rate, out, progress)
        except BaseException:
            self.dist.close(wait=False)
            raise
        self.dist.close()
        return self

    def _add(self, loss, correct, seen) -> None:
        sums = self.epoch_sums
        sums["loss"] += float(loss)
        sums["correct"] += int(correct)
        sums["seen"] += seen

    def _global_sums(self) -> dict[str, float]:
        """This epoch's training sums over all processes (every process must call it)."""
        return dict(zip(self.epoch_sums, self.dist.sum(list(self.epoch_sums.values()))))

    def _end_epoch(self, epoch: int, rate: float, out: Path | None, progress: Progress) -> None:
        train = list(self._global_sums().values())
        val = self.validate()
        record = {
            "epoch": epoch,
            "step": self.step,
            "lr": self.lr_at(self.step - 1),
            "train_loss": train[0] / train[2],
            "train_acc": 100.0 * train[1] / train[2],
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "images_per_s": rate,
        }
        ema = self.validate(self.ema.module) if self.ema is not None else {"top1": -1.0}
        if self.ema is not None:
            record.update(val_ema_loss=ema["loss"], val_ema_top1=ema["top1"], val_ema_top5=ema["top5"])
        new_best_ema, self.best_ema_top1 = ema["top1"] > self.best_ema_top1, max(self.best_ema_top1, ema["top1"])
        self.history.append(record)
        self.epoch_sums = {"loss": 0.0, "correct": 0, "seen": 0}
        new_best = record["val_top1"] > self.best_top1
        self.best_top1 = max(self.best_top1, record["val_top1"])
        progress.summary(record, self.total_steps)
        if out:
            self._save(out, new_best, new_best_ema)
            if self.dist.is_main:
                write_metrics(out / "metrics.jsonl", self.history)
                write_curves(out / "curves.png", self.history)

    def validate(self, model: torch.nn.Module | None = None) -> dict[str, Any]:
        """Top-1/top-5 and loss on the validation split (all processes together), of the
        trained model or of ``model`` (the weights' average)."""
        batches = ShardedBatches(len(self.val_set), self.config.batch_size, rank=self.dist.rank, world=self.dist.world)
        return evaluate_loader(
            model or self.model, self._loader(self.val_set, batches), len(self.classes), self._inputs, self.dist,
            lambda: self.dist.autocast(self.config.amp),
        )

    # -- the output folder ---------------------------------------------------------------
    def _out(self) -> Path | None:
        if self.config.out is None:
            return None
        out = Path(self.config.out)
        if self.dist.is_main:
            try:
                out.mkdir(parents=True, exist_ok=True)
                write_json(out / "config.json", dataclasses.asdict(self.config))
            except OSError as exc:
                raise TrainingError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
        return out

    def _save(self, out: Path, new_best: bool, new_best_ema: bool = False) -> None:
        """The weights (``last``, and ``best`` when validation improved; with EMA also
        ``ema`` and ``best_ema``) and the trainer state. Called on every process; only
        rank 0 writes."""
        sums = self._global_sums()
        if not self.dist.is_main:
            return
        epoch = self.step // self.steps_per_epoch
        metadata = {"dataset": self.config.dataset,
                    "image_size": str(self.image_size), "epoch": str(epoch), "step": str(self.step)}
        save(self.model, out / "last.safetensors", metadata=metadata)
        if new_best:
            save(self.model, out / "best.safetensors", metadata={**metadata, "val_top1": f"{self.best_top1:.4f}"})
        if self.ema is not None:
            save(self.ema.module, out / "ema.safetensors", metadata=metadata)
            if new_best_ema:
                save(self.ema.module, out / "best_ema.safetensors",
                     metadata={**metadata, "val_top1": f"{self.best_ema_top1:.4f}"})
        info = {"step": self.step, "config": dataclasses.asdict(self.config), "history": self.history,
                "best_top1": self.best_top1, "best_ema_top1": self.best_ema_top1, "epoch_sums": sums,
                "classes": self.classes, "create_options": self.model.create_kwargs, "scaler": self.scaler.state_dict()}
        save_state(out / STATE_FILE, self.model.state_dict(), self.optimizer.state_dict(), info,
                   ema_state=self.ema.module.state_dict() if self.ema is not None else None)

    def restore(self, model_state, optimizer_state, info) -> None:
        if info.get("classes", self.classes) != self.classes:
            raise TrainingError(f"the run was trained on classes {info['classes']}, but {self.config.dataset!r} now has "
                                f"{self.classes}; its labels would no longer mean the same")
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        self.step, self.history, self.best_top1 = info["step"], info["history"], info["best_top1"]
        self.best_ema_top1 = info.get("best_ema_top1", -1.0)
        if self.ema is not None:
            self.ema.module.load_state_dict(info["ema_state"])
        self.scaler.load_state_dict(info.get("scaler") or self.scaler.state_dict())
        if self.dist.is_main:  # the saved sums are already over all processes
            self.epoch_sums = info["epoch_sums"]


def fit(config: TrainConfig | None = None, *, resume: str | None = None, **options: Any) -> Trainer:
    """Train from a ``TrainConfig`` or keyword options, or continue the run in ``resume``.

    When resuming, ``epochs``, ``max_steps``, ``workers``, ``checkpoint_every`` and
    ``log_every`` may be changed; any other option must match the saved run.
    """
    if resume is None:
        if config is None:
            config = TrainConfig(**options)
        refuse_existing_run(config.out, f"resume={str(config.out)!r}")
        return Trainer(config).fit()
    model_state, optimizer_state, info = load_state(Path(resume) / STATE_FILE)
    saved = info["config"]
    changed = {k for k, v in options.items() if k not in RESUMABLE and v != saved.get(k)}
    if config is not None or changed:
        raise TrainingError(f"cannot change {', '.join(sorted(changed)) or 'the configuration'} when resuming; "
                            f"only {', '.join(sorted(RESUMABLE))} may change")
    trainer = Trainer(TrainConfig(**{**saved, **options, "out": str(resume)}), info.get("create_options"))
    trainer.restore(model_state, optimizer_state, info)
    return trainer.fit()


def refuse_existing_run(out: str | None, how_to_resume: str) -> None:
    """A folder that holds a run is continued, never trained over; ``how_to_resume`` is
    the caller's own way of saying so (a keyword in Python, an option on the CLI)."""
    if out and (Path(out) / STATE_FILE).exists():
        raise TrainingError(f"{out} already holds a run; continue it with {how_to_resume} or choose another folder")


def _memory_format(config: TrainConfig) -> torch.memory_format:
    return torch.channels_last if config.channels_last else torch.contiguous_format


def _optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = OPTIMIZERS[config.optimizer][1] if config.weight_decay is None else config.weight_decay
    groups = parameter_groups(model, decay, config.head_lr_mult)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=False)
    return torch.optim.AdamW(groups, lr=config.base_lr)
