"""``train`` and ``eval``: the generic trainer from the command line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ..arguments import check_options, check_path
from ..errors import TrainingError
from ..training.config import NUMBERS, POLICIES, TrainConfig

KEEP = argparse.SUPPRESS  # options not given stay out of the namespace: the config's defaults apply
SPLITS = ("val", "train", "all")  # the keys of training.evaluate.SPLITS, named here without importing torch
EVAL_BATCH = {"integer": True, "minimum": 1, "maximum": 10**6}


def _number(option: str):
    """The argparse type of a numeric option. Its range is checked once parsed, by
    ``TrainConfig`` (train) or ``check_options`` (eval), with the same bounds, so a bad
    value is one line naming the option."""
    bounds = EVAL_BATCH if option == "eval_batch_size" else NUMBERS[option]
    return int if bounds.get("integer") else float


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _data_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--dataset", required=required, default=KEEP,
                   help="a registered dataset (digits, folder, mnist, cifar10, fake, ...)" + ("" if required else
                        "; with --data-root alone, folder"))
    p.add_argument("--data-root", default=KEEP, help="the dataset's folder, for datasets read from disk")
    p.add_argument("--data-opt", dest="data_options", action="append", type=_key_value, default=KEEP, metavar="KEY=VALUE",
                   help="a dataset option, e.g. val_fraction=0.2 (repeatable)")
    p.add_argument("--image-size", type=_number("image_size"), default=KEEP, help="resize images to this size (default: the model's input size)")
    p.add_argument("--workers", type=_number("workers"), default=KEEP,
                   help="data loading processes (default: the cores available, or 0 for datasets held in memory)")
    p.add_argument("--device", default=KEEP, help="cpu, cuda, cuda:1 ... (default: the GPU if there is one)")


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a registered model on a registered dataset",
                       description="Train any registered model; run under torchrun for several processes.")
    p.add_argument("--model", default=KEEP, help="a registered model name")
    p.add_argument("--model-opt", dest="model_options", action="append", type=_key_value, default=KEEP, metavar="KEY=VALUE",
                   help="a create() option of the model, e.g. drop_rate=0.2 (repeatable)")
    _data_arguments(p, required=False)
    p.add_argument("--out", default=KEEP, help="output folder (weights, trainer state, metrics, curves)")
    p.add_argument("--resume", metavar="OUT_DIR", default=KEEP, help="continue the run saved in OUT_DIR")
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=_number("epochs"), default=KEEP, help="default 10")
    g.add_argument("--max-steps", type=_number("max_steps"), default=KEEP, help="stop after this many optimiser steps")
    g.add_argument("--batch-size", type=_number("batch_size"), default=KEEP, help="global batch per forward pass, split across processes (default 64)")
    g.add_argument("--accum-steps", type=_number("accum_steps"), default=KEEP, help="micro-batches per optimiser step (default 1)")
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default=KEEP, help="default sgd (momentum 0.9)")
    g.add_argument("--lr", type=_number("lr"), default=KEEP, help="peak learning rate (default 0.05 for sgd, 1e-3 for adamw)")
    g.add_argument("--momentum", type=_number("momentum"), default=KEEP, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=_number("weight_decay"), default=KEEP, help="on weights, not biases or norms (default 5e-4 sgd, 0.05 adamw)")
    g.add_argument("--schedule", choices=("cosine", "step", "none"), default=KEEP, help="default cosine")
    g.add_argument("--warmup-epochs", type=_number("warmup_epochs"), default=KEEP, help="linear warm-up before the cosine (default 1)")
    g.add_argument("--step-epochs", type=_number("step_epochs"), default=KEEP, help="step schedule: epochs between decays (default 30)")
    g.add_argument("--gamma", type=_number("gamma"), default=KEEP, help="step schedule: decay factor (default 0.1)")
    g.add_argument("--label-smoothing", type=_number("label_smoothing"), default=KEEP, help="default 0")
    g.add_argument("--clip-grad", type=_number("clip_grad"), default=KEEP, help="clip the gradient norm to this value")
    g.add_argument("--seed", type=_number("seed"), default=KEEP, help="default 0; the same seed gives the same run")
    g = p.add_argument_group("augmentation and regularisation")
    g.add_argument("--augment", choices=POLICIES, default=KEEP,
                   help="training augmentation (default: the dataset's, else crop-flip up to 64 px and imagenet above)")
    g.add_argument("--mixup", type=_number("mixup"), default=KEEP, metavar="ALPHA", help="Mixup with this Beta alpha (default off)")
    g.add_argument("--cutmix", type=_number("cutmix"), default=KEEP, metavar="ALPHA", help="CutMix with this Beta alpha (default off)")
    g.add_argument("--ema", type=_number("ema"), default=KEEP, metavar="DECAY",
                   help="also keep, validate and save an average of the weights (e.g. 0.999)")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--weights", default=KEEP, metavar="FILE", help="start from this weights file, with a new head for the dataset")
    g.add_argument("--pretrained", action="store_true", default=KEEP, help="start from the store's weights for the model")
    g.add_argument("--freeze", default=KEEP, metavar="PARTS",
                   help="parts left untrained: module paths (stem,stages.0) or backbone (all but the head)")
    g.add_argument("--head-lr-mult", type=_number("head_lr_mult"), default=KEEP, help="the head's learning rate times this (default 1)")
    g = p.add_argument_group("speed and checkpoints")
    g.add_argument("--channels-last", action="store_true", default=KEEP, help="NHWC memory format")
    g.add_argument("--amp", choices=("bf16", "fp16"), default=KEEP, help="bfloat16 autocast, or float16 with a gradient scaler (GPU)")
    g.add_argument("--compile", action="store_true", default=KEEP, help="torch.compile the model")
    g.add_argument("--checkpoint-every", type=_number("checkpoint_every"), default=KEEP, help="also checkpoint every N steps (default: each epoch)")
    g.add_argument("--log-every", type=_number("log_every"), default=KEEP,
                   help="off a terminal, a progress line every N steps (default 50) and at least every 30 s")
    g.add_argument("--tensorboard", action="store_true", default=KEEP,
                   help="also write TensorBoard event files to OUT/tensorboard (pip install 'registry-core[tensorboard]')")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="top-1/top-5 and per-class accuracy of a weights file on a dataset",
                       description="Score a weights file on a registered dataset, or (with --data-root alone) on a "
                       "folder of images ROOT/<class>/*; --split all scores every image of it.")
    p.add_argument("--weights", required=True, help="a .safetensors file written by the trainer or registry_core.save")
    _data_arguments(p, required=False)
    p.add_argument("--split", choices=SPLITS, default="val",
                   help="which images to score: the validation split (default), the training split, or all of them")
    p.add_argument("--batch-size", type=_number("eval_batch_size"), default=256)
    p.add_argument("--confusion", metavar="FILE.png",
                   help="also draw the confusion matrix, class names on the axes, to this PNG (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="machine-readable output (with --confusion, the matrix too)")
    p.set_defaults(func=cmd_eval)


def cmd_train(args) -> int:
    from ..training.preflight import refuse_early

    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume")}
    for key in ("data_options", "model_options"):
        if key in options:
            options[key] = dict(options[key])
    config = None
    if "resume" not in args:
        missing = [f"--{k}" for k in ("model", "dataset", "out") if k not in options]
        if missing:
            raise TrainingError(f"train needs {', '.join(missing)} (or --resume OUT_DIR)")
        config = TrainConfig(**options)
        refuse_early(config, f"--resume {shlex.quote(options['out'])}")  # before torch is imported
    else:
        check_path(args.resume, "resume")
        refuse_early(None, device=options.get("device"))

    from ..errors import DivergenceError
    from ..training.outputs import listed_files
    from ..training.train import fit

    try:
        trainer = fit(resume=args.resume, **options) if config is None else fit(config)
    except DivergenceError as exc:  # not a usage error: the run started and failed
        if os.environ.get("RANK", "0") == "0":
            print(f"registry-core: error: {exc}", file=sys.stderr)
        return 1
    if not trainer.dist.is_main:
        return 0
    print(f"best validation top-1 {trainer.best_top1:.2f}%"
          + (f" (of the weights' average: {trainer.best_ema_top1:.2f}%)" if trainer.ema is not None else ""))
    for path in listed_files(trainer.config.out or "."):
        print(f"  {path}")
    return 0


def cmd_eval(args) -> int:
    from ..training.preflight import refuse_early_eval

    data_root = getattr(args, "data_root", None)
    dataset = getattr(args, "dataset", "folder" if data_root else None)
    if dataset is None:
        raise TrainingError("eval needs --dataset, or --data-root FOLDER for a folder of images ROOT/<class>/*")
    check_options(args, {"batch_size": EVAL_BATCH, "image_size": NUMBERS["image_size"], "workers": NUMBERS["workers"]},
                  as_typed=False)
    refuse_early_eval(args.weights, dataset, data_root, getattr(args, "device", None))  # before torch is imported

    from ..training.evaluate import evaluate
    from ..training.plots import require_matplotlib, write_confusion

    if args.confusion:
        require_matplotlib("--confusion")
    result = evaluate(args.weights, dataset, data_root=data_root, split=args.split,
                      data_options=dict(getattr(args, "data_options", [])), batch_size=args.batch_size,
                      image_size=getattr(args, "image_size", None), workers=getattr(args, "workers", 0),
                      device=getattr(args, "device", None))
    which = {"val": "validation images", "train": "training images", "all": "images, every split"}[args.split]
    source = f"{dataset} at {data_root}" if data_root else dataset
    title = f"{args.weights} on {source} ({result['images']} {which} at {result['image_size']}px)"
    if args.confusion:
        write_confusion(Path(args.confusion), result["confusion"], result["classes"],
                        title=f"{Path(args.weights).name} on {source}, {result['images']} {which}")
    else:
        del result["confusion"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(title)
    print(f"top-1 {result['top1']:.2f}%" + (f"  top-5 {result['top5']:.2f}%" if "top5" in result else "")
          + f"  loss {result['loss']:.4f}")
    width = max(len(c) for c in [*result["classes"], "class"])
    print(f"  {'class'.ljust(width)}  {'images':>6}  {'recall':>7}  {'precision':>9}")
    for name, count, recall, precision in zip(result["classes"], result["class_images"], result["per_class"],
                                              result["precision"]):
        print(f"  {name.ljust(width)}  {count:6d}  {_percent(recall):>7}  {_percent(precision):>9}")
    if args.confusion:
        print(f"confusion matrix: {args.confusion}")
    return 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"
