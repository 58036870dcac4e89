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
import itertools
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..errors import DivergenceError, TrainingError
from ..model.compose import classification_loss, main_logits
from .config import OPTIMIZERS, RESUMABLE, TrainConfig
from .data import ShardedBatches, available_cores, image_size_for, load_dataset, make_loader, normalize
from .distributed import Distributed
from .divergence import DivergenceWatch
from .evaluate import evaluate_loader
from .finetune import WeightsEma, freeze, frozen_modules, hold_frozen, model_for, parameter_groups
from .logs import require_tensorboard
from .outputs import RunFolder, refuse_existing_run
from .progress import Progress
from .state import STATE_FILE, check_against, load_state
from .transforms import Augmented, batch_mix, default_policy, eval_transform, train_transform, trained_data_config

__all__ = ["TrainConfig", "Trainer", "fit", "refuse_existing_run"]

class Trainer:
    """One run: the model, its data, optimiser and schedule, and the loop over them.

    Nothing is written until ``fit()``; with ``out=None`` nothing is written at all.
    ``create_options`` (resuming) rebuilds the recorded architecture without reading
    the ``weights`` file again: the state holds the weights.
    """

    def __init__(self, config: TrainConfig, create_options: dict[str, Any] | None = None):
        self.config = config
        if config.tensorboard:
            if config.out is None:
                raise TrainingError("tensorboard logs go to the output folder: give out (--out) too")
            require_tensorboard()
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
        self.merge_single = _trains_batchnorm(model, self.frozen)
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
        self.steps_per_epoch = math.ceil(len(self._batches(0)) / config.accum_steps)
        if self.steps_per_epoch == 0:
            raise TrainingError(f"{config.dataset!r} has {len(self.train_set)} training images, fewer than the "
                                f"{self.dist.world} processes")
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch) if config.schedule == "cosine" else 0
        self.criterion = partial(F.cross_entropy, label_smoothing=config.label_smoothing)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_top1 = self.best_ema_top1 = -1.0
        self.epoch_sums = {"loss": 0.0, "correct": 0, "seen": 0}
        self.watch = DivergenceWatch(len(self.classes), config.base_lr, config.head_lr_mult)
        self.resumed, self.saved_step = False, 0
        self.folder: RunFolder | None = None

    def describe(self) -> str:
        """The start line: what trains on what, how many steps, where and in what precision."""
        c, batches = self.config, self._batches(0)
        last = batches.last_batch() * self.dist.world
        batch = f"batch {c.batch_size}" + (f" x {c.accum_steps} accumulated" if c.accum_steps > 1 else "")
        if last != c.batch_size:
            batch += f", the epoch's last {_count(last, 'image')}"
            if last > c.batch_size:
                batch += " (a last batch of 1 joins the one before: BatchNorm cannot train on one image)"
        where = f"{self.dist.device}" + (f", {_count(torch.get_num_threads(), 'thread')}" if self.dist.device.type == "cpu" else "")
        if self.dist.world > 1:
            where = f"{self.dist.world} processes, {where} each"
        start = f", resuming after step {self.step}" if self.step else ""
        return (f"training {c.model} on {c.dataset}: {len(self.train_set)} training and {len(self.val_set)} validation "
                f"images, {len(self.classes)} classes, at {self.image_size}px; {_count(self.steps_per_epoch, 'step')} per "
                f"epoch ({batch}), {_count(self.total_steps, 'step')}{start}; {where}, {c.precision}")

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
        """One optimiser step over up to ``accum_steps`` micro-batches, each weighted by
        its images (the epoch's last may be smaller): ``(loss sum, correct, images)``."""
        self.net.train()
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        hold_frozen(self.model, self.frozen)
        loss_sum = torch.zeros((), device=self.dist.device)
        correct = torch.zeros((), device=self.dist.device, dtype=torch.long)
        seen, images = 0, sum(len(targets) for _, targets in batches)
        for i, (inputs, targets) in enumerate(batches):
            x, y = self._inputs(inputs), targets.to(self.dist.device, non_blocking=True)
            if self.mix is not None:  # soft targets; accuracy counts each image's larger share
                x, target = self.mix(x, y)
                y = target.argmax(1)
            else:
                target = y
            with self.dist.no_sync(i < len(batches) - 1):
                with self.dist.autocast(self.config.amp):
                    output = self.net(x)
                    loss = classification_loss(output, target, self.criterion)
                self.scaler.scale(loss * (len(y) / images)).backward()
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
                              shuffle=True, seed=c.seed, epoch=epoch, skip=skip, merge_single=self.merge_single)

    def _loader(self, dataset, batches: ShardedBatches) -> DataLoader:
        dataset.set_epoch(batches.epoch)  # before the workers take their copy
        return make_loader(dataset, batches, self.workers, self.dist.device, self.config.seed + batches.epoch)

    def _reseed(self) -> None:
        """The random stream (dropout, stochastic depth) restarts from ``(seed, rank, step)``
        at each epoch and checkpoint, so resuming needs no saved generator state."""
        torch.manual_seed((self.config.seed * 1_000_003 + self.dist.rank) * 1_000_003 + self.step)

    def fit(self) -> Trainer:
        """Train until ``epochs`` or ``max_steps``, validating and checkpointing each epoch.
        A diverging run stops with a ``DivergenceError``; its folder keeps the last
        finite checkpoint."""
        c = self.config
        try:
            self._open_folder()
            progress = Progress(self.dist.is_main, c.log_every, self.total_steps, self.step)
            progress.say(self.describe())
            while self.step < self.total_steps:
                epoch, done = divmod(self.step, self.steps_per_epoch)
                self._reseed()
                remaining = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch) - done
                loader = iter(self._loader(self.train_set, self._batches(epoch, done * c.accum_steps)))
                bar = progress.epoch(epoch + 1, remaining, done)
                started, images = time.perf_counter(), 0
                for _ in range(remaining):
                    loss, correct, seen = self.train_step(list(itertools.islice(loader, c.accum_steps)))
                    step_loss = self._add(loss, correct, seen)
                    images += seen * self.dist.world
                    rate = images / (time.perf_counter() - started)
                    lr = self.lr_at(self.step - 1)
                    bar.update(self.epoch_sums, rate, lr, self.step)
                    if self.folder is not None:
                        self.folder.step(self.step, step_loss / seen, 100.0 * int(correct) / seen, lr, rate)
                    self.watch.check_finite(self.dist.sum([step_loss])[0], "the training loss", self._where())
                    at_epoch_end = self.step % self.steps_per_epoch == 0 or self.step == self.total_steps
                    if c.checkpoint_every and not at_epoch_end and self.step % c.checkpoint_every == 0:
                        if c.out:
                            self._save(new_best=False)
                        self._reseed()
                bar.close()
                self._end_epoch(epoch + 1, rate, progress)
        except BaseException as exc:
            self.dist.close(wait=False)
            if isinstance(exc, DivergenceError) and c.out:
                kept = (f"{c.out} keeps the last finite checkpoint, from step {self.saved_step}" if self.saved_step
                        else f"no checkpoint was written to {c.out}")
                raise DivergenceError(f"{exc}. {kept}") from None
            raise
        finally:
            if self.folder is not None:
                self.folder.close()
                self.folder = None
        self.dist.close()
        return self

    def _where(self) -> str:
        return f"epoch {(self.step - 1) // self.steps_per_epoch + 1}, step {self.step}"

    def _add(self, loss, correct, seen) -> float:
        sums, value = self.epoch_sums, float(loss)
        sums["loss"] += value
        sums["correct"] += int(correct)
        sums["seen"] += seen
        return value

    def _global_sums(self) -> dict[str, float]:
        """This epoch's training sums over all processes (every process must call it)."""
        return dict(zip(self.epoch_sums, self.dist.sum(list(self.epoch_sums.values()))))

    def _end_epoch(self, epoch: int, rate: float, progress: Progress) -> None:
        train = list(self._global_sums().values())
        where = f"epoch {epoch}, step {self.step}"
        self.watch.check_epoch(train[0] / train[2], where)
        val = self.validate()
        record = {"epoch": epoch, "step": self.step, "lr": self.lr_at(self.step - 1), "train_loss": train[0] / train[2],
                  "train_acc": 100.0 * train[1] / train[2], "val_loss": val["loss"], "val_top1": val["top1"]}
        if "top5" in val:
            record["val_top5"] = val["top5"]
        ema = self.validate(self.ema.module) if self.ema is not None else {"top1": -1.0}
        if self.ema is not None:
            record.update(val_ema_loss=ema["loss"], val_ema_top1=ema["top1"])
            if "top5" in ema:
                record["val_ema_top5"] = ema["top5"]
        record["images_per_s"] = rate
        self.watch.check_finite(val["loss"], "the validation loss", where)
        new_best_ema, self.best_ema_top1 = ema["top1"] > self.best_ema_top1, max(self.best_ema_top1, ema["top1"])
        self.history.append(record)
        self.epoch_sums = {"loss": 0.0, "correct": 0, "seen": 0}
        new_best = record["val_top1"] > self.best_top1
        self.best_top1 = max(self.best_top1, record["val_top1"])
        progress.summary(record)
        if self.config.out:
            self._save(new_best, new_best_ema)
            if self.folder is not None:
                self.folder.epoch(self.history)

    def validate(self, model: torch.nn.Module | None = None) -> dict[str, Any]:
        """Loss, top-1 (top-5 with more than 5 classes), per-class figures and the
        confusion matrix on the validation split (all processes together), of the trained
        model or of ``model`` (the weights' average)."""
        batches = ShardedBatches(len(self.val_set), self.config.batch_size, rank=self.dist.rank, world=self.dist.world)
        return evaluate_loader(
            model or self.model, self._loader(self.val_set, batches), len(self.classes), self._inputs, self.dist,
            lambda: self.dist.autocast(self.config.amp),
        )

    # -- the output folder ---------------------------------------------------------------
    def _open_folder(self) -> None:
        """Rank 0 takes the output folder (its lock); every process learns whether it could."""
        if self.config.out is None:
            return
        error = None
        if self.dist.is_main:
            try:
                self.folder = RunFolder(self.config.out, resumed=self.resumed or self.step > 0, config=dataclasses.asdict(self.config),
                                        tensorboard=self.config.tensorboard, first_step=self.step)
            except TrainingError as exc:
                error = exc
        if self.dist.sum([float(error is not None)])[0]:
            raise error or TrainingError(f"process 0 could not take the output folder {self.config.out}")

    def _save(self, new_best: bool, new_best_ema: bool = False) -> None:
        """The weights (``last``, and ``best`` when validation improved; with EMA also
        ``ema`` and ``best_ema``) and the trainer state, after checking every weight is
        finite. Called on every process; only rank 0 writes."""
        sums = self._global_sums()
        for module in (self.model, self.ema.module if self.ema is not None else None):
            if module is not None:
                self.watch.check_weights(module, self._where())
        if self.folder is None:
            return
        epoch = self.step // self.steps_per_epoch
        metadata = {"dataset": self.config.dataset,
                    "image_size": str(self.image_size), "epoch": str(epoch), "step": str(self.step)}
        info = {"step": self.step, "config": dataclasses.asdict(self.config), "history": self.history,
                "best_top1": self.best_top1, "best_ema_top1": self.best_ema_top1, "epoch_sums": sums,
                "classes": self.classes, "create_options": self.model.create_kwargs, "scaler": self.scaler.state_dict()}
        self.folder.checkpoint(self.model, self.ema.module if self.ema is not None else None, metadata,
                               f"{self.best_top1:.4f}" if new_best else None,
                               f"{self.best_ema_top1:.4f}" if new_best_ema else None, self.optimizer.state_dict(), info)
        self.saved_step = self.step

    def restore(self, model_state, optimizer_state, info) -> None:
        if info.get("classes", self.classes) != self.classes:
            raise TrainingError(f"the run was trained on classes {info['classes']}, but {self.config.dataset!r} now has "
                                f"{self.classes}; its labels would no longer mean the same")
        self.model.load_state_dict(check_against(model_state, self.model.state_dict(), "model"))
        self.optimizer.load_state_dict(self._checked_optimizer(optimizer_state))
        self.step, self.history, self.best_top1 = info["step"], info["history"], info["best_top1"]
        self.best_ema_top1 = info.get("best_ema_top1", -1.0)
        if self.ema is not None:
            self.ema.module.load_state_dict(check_against(info.get("ema_state", {}), self.ema.module.state_dict(), "average"))
        self.scaler.load_state_dict(info.get("scaler") or self.scaler.state_dict())
        if self.dist.is_main:  # the saved sums are already over all processes
            self.epoch_sums = info["epoch_sums"]
        if self.history:
            self.watch.first = self.history[0]["train_loss"]
        self.resumed, self.saved_step = True, self.step


    def _checked_optimizer(self, saved: dict[str, Any]) -> dict[str, Any]:
        """A saved optimizer state whose groups and buffers fit this run's parameters."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if [len(g["params"]) for g in saved["param_groups"]] != [len(g["params"]) for g in self.optimizer.param_groups]:
            raise TrainingError("the trainer state's optimizer groups do not fit the run's model")
        for index, values in saved["state"].items():
            if not 0 <= index < len(params):
                raise TrainingError(f"the trainer state's optimizer has a buffer for parameter {index}, of {len(params)}")
            for name, value in values.items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != params[index].shape:
                    raise TrainingError(f"the trainer state's optimizer buffer {index}.{name} has shape "
                                        f"{tuple(value.shape)}, its parameter {tuple(params[index].shape)}")
                if isinstance(value, torch.Tensor) and value.is_floating_point() != params[index].is_floating_point():
                    raise TrainingError(f"the trainer state's optimizer buffer {index}.{name} is {value.dtype}")
        return saved


def fit(config: TrainConfig | None = None, *, resume: str | None = None, **options: Any) -> Trainer:
    """Train from a ``TrainConfig`` or keyword options, or continue the run in ``resume``.

    When resuming, ``epochs``, ``max_steps``, ``workers``, ``checkpoint_every``,
    ``log_every`` and ``tensorboard`` may be changed; any other option must match the
    saved run.
    """
    if resume is None:
        if config is None:
            config = TrainConfig(**options)
        refuse_existing_run(config.out, f"resume={str(config.out)!r}")
        return Trainer(config).fit()
    model_state, optimizer_state, info = load_state(Path(resume) / STATE_FILE)
    saved = dataclasses.asdict(info["config"])
    changed = {k for k, v in options.items() if k not in RESUMABLE and v != saved.get(k)}
    if config is not None or changed:
        raise TrainingError(f"cannot change {', '.join(sorted(changed)) or 'the configuration'} when resuming; "
                            f"only {', '.join(sorted(RESUMABLE))} may change")
    trainer = Trainer(TrainConfig.from_saved(saved, **options, out=str(resume)), info.get("create_options"))
    trainer.restore(model_state, optimizer_state, info)
    return trainer.fit()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _trains_batchnorm(model: nn.Module, frozen: list[str]) -> bool:
    """Whether a BatchNorm layer outside the frozen parts normalises each training batch."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(name == f or name.startswith(f + ".") for f in frozen)
               for name, m in model.named_modules())


def _memory_format(config: TrainConfig) -> torch.memory_format:
    return torch.channels_last if config.channels_last else torch.contiguous_format


def _optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = OPTIMIZERS[config.optimizer][1] if config.weight_decay is None else config.weight_decay
    groups = parameter_groups(model, decay, config.head_lr_mult)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=False)
    return torch.optim.AdamW(groups, lr=config.base_lr)
