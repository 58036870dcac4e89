"""The models ``benchmark`` times: ours in each variant, and the same architecture from
torchvision and timm, all with one set of weights where a converter allows it.

Weights: torchvision's random initialisation, its BatchNorm statistics taken from one
random batch (so activations keep their scale and outputs mean something), converted
into ours by the registered ``torchvision/<name>`` converter and from ours into timm's
layout by ``timm/<name>``. Where a converter is missing, that model keeps random weights
of its own, and its outputs are not compared. A variant that cannot be had (no such
model in torchvision, no onnxruntime) is a ``Skipped`` entry with the reason, not an
error.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import RegistryCoreError
from ..model.compose import ComposedModel
from .bench_settings import INFERENCE_ONLY, MODES, REFERENCES
from .extras import installed


def unchanged(x: Tensor) -> Tensor:
    return x


def channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class Skipped:
    """A variant not timed, and why."""

    variant: str
    mode: str
    reason: str


@dataclass
class Candidate:
    """One variant ready to time: ``run`` takes the prepared batch (``prepare`` is untimed:
    a layout change, a rescale). ``compare``: it holds our weights, so its logits are
    compared with our eager model's."""

    variant: str
    run: Callable[[Tensor], Any]
    prepare: Callable[[Tensor], Tensor] = unchanged
    compare: bool = True


@dataclass
class Family:
    """One architecture from each library, with weights shared where converters allow."""

    name: str
    ours: ComposedModel
    references: dict[str, nn.Module] = field(default_factory=dict)  # "torchvision", "timm"
    shared: set[str] = field(default_factory=set)  # references that hold our weights
    rescale: Callable[[Tensor], Tensor] | None = None  # torchvision's transform_input, for timm
    notes: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def settle_batchnorms(model: nn.Module, size: tuple[int, ...]) -> None:
    """Give every BatchNorm the statistics of one random batch, as training would, and put
    ``model`` in eval mode. With fresh statistics, random weights shrink the activations
    layer by layer until some models' logits are their bias alone."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one batch, exactly its statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(4, *size, generator=torch.Generator().manual_seed(1)))
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def draw_zero_classifier(model: nn.Module) -> None:
    """Draw the last linear layer's weights from N(0, 0.01) where the library starts them at
    zero (torchvision's ViT): with a zero classifier every output is 0 and comparing them
    would prove nothing."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears and not linears[-1].weight.any():
        with torch.no_grad():
            linears[-1].weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(0))


def build_family(name: str, variants: tuple[str, ...]) -> Family:
    """Our ``name`` and, where asked and available, torchvision's and timm's."""
    from ..factory.catalog import get_converter, list_converters
    from ..factory.create import create

    converters = set(list_converters())
    convertible = f"torchvision/{name}" in converters
    theirs: nn.Module | None = None
    create_kwargs: dict[str, Any] = {}
    if any(v.startswith("torchvision") for v in variants):
        theirs, create_kwargs = _torchvision(name, convertible)
    torch.manual_seed(0)
    ours = create(name, **create_kwargs)
    family = Family(name, ours)
    if theirs is not None:
        settle_batchnorms(theirs, ours.meta.input_size)
        draw_zero_classifier(theirs)
        family.references["torchvision"] = theirs
        if convertible:
            ours.load_state_dict(get_converter("torchvision", name).to_ours(theirs.state_dict()), strict=True)
            family.shared.add("torchvision")
        else:
            family.notes.append(f"torchvision's {name} keeps random weights of its own (no converter): outputs not compared")
        if getattr(theirs, "transform_input", False):
            family.rescale = theirs._transform_input  # type: ignore[assignment]
    else:
        reason = "torchvision is not installed" if not installed("torchvision") else f"torchvision has no {name}"
        family.skipped += [Skipped(v, mode, reason) for v in variants if v.startswith("torchvision") for mode in MODES]
    if "torchvision" not in family.shared:
        settle_batchnorms(ours, ours.meta.input_size)
    ours.eval()
    if "timm" in variants:
        _add_timm(family, f"timm/{name}" in converters)
    return family


def _torchvision(name: str, has_converter: bool) -> tuple[nn.Module | None, dict[str, Any]]:
    """torchvision's model and the create options that make ours the same model."""
    if not installed("torchvision"):
        return None, {}
    import torchvision

    source, source_kwargs, create_kwargs = name, {}, {}
    if has_converter:
        from ..factory.catalog import get_converter

        converter = get_converter("torchvision", name)
        source, source_kwargs, create_kwargs = converter.source_name, dict(converter.source_kwargs), dict(converter.create_kwargs)
    if source not in torchvision.models.list_models():
        return None, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes on weights=None initialisation
        torch.manual_seed(0)
        return torchvision.models.get_model(source, weights=None, **source_kwargs), create_kwargs


def _add_timm(family: Family, has_converter: bool) -> None:
    """timm's model of the architecture, under timm's name where the converter gives one
    (``vit_base_patch16_224`` for ``vit_b_16``)."""
    name = family.name
    if has_converter:
        from ..factory.catalog import get_converter

        timm_name = get_converter("timm", name).source_name
    else:
        timm_name = name
    if not installed("timm"):
        reason = "timm is not installed"
    else:
        import timm

        reason = "" if timm.is_model(timm_name) else f"timm has no {name}"
    if reason:
        family.skipped += [Skipped("timm", mode, reason) for mode in MODES]
        return
    torch.manual_seed(0)
    model = timm.create_model(timm_name, pretrained=False, num_classes=family.ours.num_classes)
    problem = "no converter"
    if has_converter:
        from ..factory.catalog import get_converter

        converter = get_converter("timm", name)
        try:
            # timm's layout may lack parts ours has (an auxiliary head): convert only what it holds
            wanted = converter.to_ours(model.state_dict()).keys()
            model.load_state_dict(converter.from_ours({k: v for k, v in family.ours.state_dict().items() if k in wanted}),
                                  strict=True)
            family.shared.add("timm")
        except (RegistryCoreError, RuntimeError) as exc:  # a converter whose keys do not fit this timm version
            problem = str(exc)
    if "timm" not in family.shared:
        settle_batchnorms(model, family.ours.meta.input_size)
        family.notes.append(f"timm's {name} keeps random weights of its own ({problem}): outputs not compared"[:200])
    family.references["timm"] = model.eval()


def inference_candidates(family: Family, variants: tuple[str, ...], image_size: int, onnx: OnnxBuilder,
                         made: dict[str, Any]) -> tuple[list[Candidate], list[Skipped]]:
    """Every selected variant for eval at ``image_size``, ready to run. ``made`` keeps the
    derived models (copies, fused, compiled) across image and batch sizes."""
    found: list[Candidate] = []
    skipped: list[Skipped] = []
    ours = family.ours
    for variant in variants:
        if variant in REFERENCES:
            library = variant.split("+")[0]
            model = family.references.get(library)
            if model is None:
                continue  # already in family.skipped
            prepare = family.rescale if library == "timm" and family.rescale is not None else unchanged
            if variant.endswith("+cl"):
                model = _once(made, variant, _channels_last_copy, model)
                prepare = channels_last
            found.append(Candidate(variant, model, prepare, compare=library in family.shared))
        elif variant == "eager":
            found.append(Candidate(variant, ours))
        elif variant == "channels_last":
            model = _once(made, variant, _channels_last_copy, ours)
            found.append(Candidate(variant, model, channels_last))
        elif variant in ("fused", "fused+cl"):
            cl = variant == "fused+cl"
            model = _once(made, variant, _fused_copy, ours, cl)
            found.append(Candidate(variant, model, channels_last if cl else unchanged))
        elif variant == "compiled":
            found.append(Candidate(variant, _once(made, variant, torch.compile, ours)))
        elif variant in ("onnxruntime", "int8"):
            runnable = onnx.model(variant, image_size)
            if isinstance(runnable, str):
                skipped.append(Skipped(variant, "inference", runnable))
            else:
                found.append(Candidate(variant, runnable))
    return found, skipped


def _once(made: dict[str, Any], key: str, build: Callable[..., Any], *args: Any) -> Any:
    if key not in made:
        made[key] = build(*args)
    return made[key]


def _channels_last_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def _fused_copy(model: ComposedModel, cl: bool) -> nn.Module:
    return copy.deepcopy(model).fuse(channels_last=cl)


def train_candidates(family: Family, variants: tuple[str, ...], num_classes: int) -> tuple[list[Candidate], list[Skipped]]:
    """A training step (forward, cross-entropy, backward, SGD step) per selected variant,
    each on its own copy of the model."""
    found: list[Candidate] = []
    skipped = [Skipped(v, "train", "inference only") for v in variants if v in INFERENCE_ONLY]
    for variant in variants:
        if variant in INFERENCE_ONLY:
            continue
        library = variant.split("+")[0]
        if variant in REFERENCES and library not in family.references:
            continue
        source = family.references[library] if variant in REFERENCES else family.ours
        model = copy.deepcopy(source).train()
        prepare: Callable[[Tensor], Tensor] = unchanged
        if variant in ("torchvision+cl", "channels_last"):
            model = model.to(memory_format=torch.channels_last)
            prepare = channels_last
        elif variant == "timm" and family.rescale is not None:
            prepare = family.rescale
        forward = torch.compile(model) if variant == "compiled" else model
        found.append(Candidate(variant, _train_step(model, forward, num_classes), prepare, compare=False))
    return found, skipped


def _train_step(model: nn.Module, forward: Callable[[Tensor], Any], num_classes: int) -> Callable[[Tensor], Any]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    labels = torch.Generator().manual_seed(2)

    def step(x: Tensor) -> Tensor:
        targets = torch.randint(0, num_classes, (len(x),), generator=labels).to(x.device)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(main_output(forward(x)), targets)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def main_output(output: Any) -> Tensor:
    """The main logits of our, torchvision's or timm's model, in eval or training mode."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"cannot find the logits in a {type(output).__name__}")


class OnnxBuilder:
    """Exports our model to ONNX (fp32) and quantises it (int8) once per image size, in a
    temporary folder; says why where it cannot."""

    def __init__(self, family: Family, calibrate: Any, folder: Path):
        self.family, self.calibrate, self.folder = family, calibrate, folder
        self.made: dict[tuple[str, int], Any] = {}
        self.reports: dict[int, Any] = {}

    def model(self, variant: str, size: int) -> Any:
        if (variant, size) not in self.made:
            self.made[(variant, size)] = self._build(variant, size)
        return self.made[(variant, size)]

    def _build(self, variant: str, size: int) -> Any:
        missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if not installed(name)]
        if missing:
            return f"needs {', '.join(missing)} (pip install 'registry-core[onnx]')"
        from .export import export
        from .quantize import quantize
        from .runtime import OnnxModel

        fp32 = self.folder / f"fp32-{size}.onnx"
        try:
            if not fp32.is_file():
                export(self.family.ours, fp32, format="onnx", image_size=size)
            if variant == "onnxruntime":
                return OnnxModel(fp32)
            if isinstance(self.calibrate, str | os.PathLike) and size != self.family.ours.data_config.eval_size:
                return f"calibration images are prepared at the eval size {self.family.ours.data_config.eval_size}, not {size}"
            result = quantize(fp32, self.folder / f"int8-{size}.onnx", calibrate=self._calibration(size),
                              min_agreement=0.0, min_cosine=-1.0)
        except RegistryCoreError as exc:
            return f"failed: {exc}"
        self.reports[size] = result.quantization
        return OnnxModel(result.path)

    def _calibration(self, size: int) -> Any:
        """The folder given, or seeded random images at ``size`` (the benchmark's own input)."""
        if self.calibrate is not None:
            return self.calibrate
        channels = self.family.ours.data_config.input_size[0]
        return torch.randn(20, channels, size, size, generator=torch.Generator().manual_seed(3))

