"""A conformance kit: checks any stem, block, head or registered model keeps the contract.

Plugin authors call these from their own tests::

    from registry_core import testing
    testing.check_block(MyBlock, in_channels=64, out_channels=128, stride=2)
    testing.check_model("my_model")

Each check raises ``ConformanceError`` (an ``AssertionError``) saying what failed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .errors import ConformanceError, ConversionError
from .factory.catalog import get_converter
from .factory.conversion import max_output_difference
from .factory.create import create
from .model.compose import classification_loss, main_logits
from .model.init import initialise
from .model.interfaces import Block, Head, Stem
from .plugins.host import default_host


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _resolve(kind: str, component: Any) -> Any:
    if isinstance(component, str):
        return default_host().registry.get(kind, component).obj
    return component


def _check_backward(module: nn.Module, output: torch.Tensor, what: str) -> None:
    if not any(p.requires_grad for p in module.parameters()):
        return  # a parameter-free component (a pooling block) has nothing to train
    _expect(output.requires_grad, f"{what}: output does not depend on its parameters")
    output.float().square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    _expect(not missing, f"{what}: no gradient reached {', '.join(missing[:5])}")
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    _expect(not bad, f"{what}: non-finite gradients in {', '.join(bad[:5])}")


def _check_deterministic_eval(module: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    module.eval()
    with torch.no_grad():
        first, second = module(x), module(x)
    _expect(torch.equal(first, second), f"{what}: two eval passes on the same input differ")
    return first


def _built_and_initialised(cls: Any, args: tuple, options: dict[str, Any], what: str) -> Any:
    """Build the component twice under one seed, as the core does (constructor, then
    ``init_weights()`` or the default initialisation), and check the initialisation
    contract: finite, reproducible under the seed, and, for the default, He fan-out."""
    built = []
    for _ in range(2):
        torch.manual_seed(0)
        module = cls(*args, **options)
        initialise(module)
        built.append(module)
    first, second = (dict(m.named_parameters()) for m in built)
    bad = [n for n, p in first.items() if not torch.isfinite(p).all()]
    _expect(not bad, f"{what}: non-finite parameters after initialisation: {', '.join(bad[:5])}")
    differ = [n for n in first if not torch.equal(first[n], second[n])]
    _expect(not differ, f"{what}: initialisation is not reproducible under torch.manual_seed: {', '.join(differ[:5])}")
    if not callable(getattr(built[0], "init_weights", None)):
        for name, layer in built[0].named_modules():
            if isinstance(layer, nn.modules.conv._ConvNd) and layer.weight.numel() >= 4096:
                fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
                expected = math.sqrt(2.0 / fan_out)
                std = layer.weight.std().item()
                _expect(abs(std - expected) <= 0.2 * expected,
                        f"{what}: {name} has std {std:.3g} after the default initialisation, expected {expected:.3g}")
    return built[0]


def _spatial_ok(size_in: int, size_out: int, stride: int, trims: bool) -> bool:
    if trims:
        return 1 <= size_out <= math.ceil(size_in / stride)
    return size_out in (size_in // stride, math.ceil(size_in / stride))


def check_stem(stem: type[Stem] | str, *, in_chans: int = 3, size: int = 64, batch: int = 2, **options: Any) -> Stem:
    """A stem builds from ``in_chans``, produces ``out_channels`` and shrinks by ``reduction``."""
    cls = _resolve("stem", stem)
    module = _built_and_initialised(cls, (in_chans,), options, f"stem {cls.__name__}")
    what = f"stem {cls.__name__}"
    _expect(isinstance(module, Stem), f"{what} is not a registry_core.Stem")
    module.train()
    y = module(torch.randn(batch, in_chans, size, size))
    _expect(y.shape[:2] == (batch, module.out_channels), f"{what}: output {tuple(y.shape)}, expected {module.out_channels} channels")
    _expect(
        all(abs(s - size / module.reduction) <= max(2, 0.1 * size / module.reduction) for s in y.shape[2:]),
        f"{what}: output size {tuple(y.shape[2:])} does not match reduction {module.reduction} of {size}",
    )
    _check_backward(module, y, what)
    _check_deterministic_eval(module, torch.randn(batch, in_chans, size, size), what)
    return module


def check_block(
    block: type[Block] | str,
    *,
    in_channels: int = 16,
    out_channels: int = 32,
    stride: int = 1,
    size: int = 16,
    batch: int = 2,
    **options: Any,
) -> Block:
    """A block maps ``N x in x H x W`` to ``N x out x H/stride x W/stride`` and trains."""
    cls = _resolve("block", block)
    module = _built_and_initialised(cls, (in_channels, out_channels, stride), options, f"block {cls.__name__}")
    what = f"block {cls.__name__}({in_channels}, {out_channels}, stride={stride})"
    _expect(isinstance(module, Block), f"{what} is not a registry_core.Block")
    _expect(
        (module.in_channels, module.out_channels, module.stride) == (in_channels, out_channels, stride),
        f"{what}: in_channels/out_channels/stride attributes do not match the constructor arguments",
    )
    module.train()
    y = module(torch.randn(batch, in_channels, size, size))
    _expect(y.shape[:2] == (batch, out_channels), f"{what}: output {tuple(y.shape)}, expected {out_channels} channels")
    _expect(
        all(_spatial_ok(size, s, stride, cls.trims_border) for s in y.shape[2:]),
        f"{what}: output size {tuple(y.shape[2:])} from {size}x{size} breaks the stride contract",
    )
    _check_backward(module, y, what)
    _check_deterministic_eval(module, torch.randn(batch, in_channels, size, size), what)
    return module


def check_head(head: type[Head] | str, *, in_features: int = 32, num_classes: int = 7, size: int = 7, batch: int = 2, **options: Any) -> Head:
    """A head gives ``N x num_classes`` logits and ``reset`` changes the class count."""
    cls = _resolve("head", head)
    module = _built_and_initialised(cls, (in_features, num_classes), options, f"head {cls.__name__}")
    what = f"head {cls.__name__}"
    _expect(isinstance(module, Head), f"{what} is not a registry_core.Head")
    x = torch.randn(batch, in_features, size, size)
    module.train()
    y = module(x)
    _expect(tuple(y.shape) == (batch, num_classes), f"{what}: output {tuple(y.shape)}, expected {(batch, num_classes)}")
    _check_backward(module, y, what)
    module.reset(num_classes + 3)
    _expect(module.num_classes == num_classes + 3, f"{what}: reset() did not update num_classes")
    _expect(module(x).shape[1] == num_classes + 3, f"{what}: reset() did not change the number of logits")
    module.reset(0)
    _expect(module(x).dim() == 2, f"{what}: with 0 classes the head must return pooled features (N x F)")
    return module


def check_model(name: str, *, size: int | None = None, batch: int = 2, **create_kwargs: Any) -> None:
    """Build ``name`` and check forward, backward, eval determinism, head reset,
    ``in_chans=1`` and ``features_only`` against ``feature_info``. ``size`` defaults to
    the model's minimum input size, which keeps heavy models cheap."""
    torch.manual_seed(0)
    model = create(name, **create_kwargs)
    meta = model.meta
    size = size or meta.min_input_size[-1]
    chans = meta.input_size[0]
    x = torch.randn(batch, chans, size, size)
    what = f"model {name!r}"

    model.train()
    logits = main_logits(model(x))
    _expect(tuple(logits.shape) == (batch, model.num_classes), f"{what}: logits {tuple(logits.shape)}")
    classification_loss(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    _expect(not missing, f"{what}: no gradient reached {', '.join(missing[:5])}")

    out = _check_deterministic_eval(model, x, what)
    _expect(tuple(out.shape) == (batch, model.num_classes), f"{what}: eval logits {tuple(out.shape)}")
    model.reset_classifier(5)
    with torch.no_grad():
        _expect(model(x).shape == (batch, 5), f"{what}: reset_classifier(5) did not give 5 logits")

    gray = create(name, in_chans=1, num_classes=3, **create_kwargs).eval()
    with torch.no_grad():
        _expect(gray(torch.randn(1, 1, size, size)).shape == (1, 3), f"{what}: in_chans=1, num_classes=3 failed")

    features = create(name, features_only=True, **create_kwargs).eval()
    with torch.no_grad():
        maps = features(x)
    _expect(len(maps) == len(features.feature_info), f"{what}: features_only gave {len(maps)} maps for {len(features.feature_info)} stages")
    for fmap, info in zip(maps, features.feature_info):
        _expect(fmap.shape[1] == info["channels"], f"{what}: {info['module']} has {fmap.shape[1]} channels, feature_info says {info['channels']}")


TOOLS = ("script", "trace", "fx", "feature_extractor", "export")
"""What ``check_toolchain`` runs by default; ``"compile"`` (``torch.compile``) is slow
on a CPU, so it runs only when asked for."""


def _toolchain_outputs(tool: str, model: nn.Module, x: torch.Tensor, compile_backend: str) -> Any:
    """``tool``'s version of ``model`` run on ``x``: logits, or for the feature
    extractor the stage maps as a list."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices and tracer warnings, not failures
        if tool == "script":
            return torch.jit.script(model)(x)
        if tool == "trace":
            return torch.jit.trace(model, x, check_trace=False)(x)
        if tool == "fx":
            return torch.fx.symbolic_trace(model)(x)
        if tool == "feature_extractor":
            from torchvision.models.feature_extraction import create_feature_extractor

            nodes = {module: str(i) for i, module in enumerate(model.stage_info.module_name())}  # type: ignore[union-attr, operator]
            outputs = list(create_feature_extractor(model, nodes)(x).values())
            return model.as_maps(outputs, list(range(len(outputs))), x.shape[-2], x.shape[-1])  # type: ignore[operator]
        if tool == "export":
            return torch.export.export(model, (x,)).module()(x)
        if tool == "compile":
            return torch.compile(model, backend=compile_backend, dynamic=False)(x)
    raise ConformanceError(f"unknown tool {tool!r}; choose from {', '.join((*TOOLS, 'compile'))}")


def check_toolchain(name: str, *, size: int | None = None, batch: int = 2, tools: tuple[str, ...] = TOOLS,
                    atol: float = 1e-4, compile_backend: str = "inductor", **create_kwargs: Any) -> dict[str, float]:
    """Run ``name`` (in eval mode, at ``size`` pixels, by default its minimum input
    size or 32) through TorchScript (``script``, ``trace``), torch.fx (``fx``, and
    torchvision's ``feature_extractor`` against ``forward_intermediates``),
    ``torch.export`` and, if asked, ``torch.compile`` (with ``compile_backend``), comparing each one's outputs
    with the eager model's. Returns the largest difference per tool; raises
    ``ConformanceError`` naming every tool that failed with the first line of why."""
    torch.manual_seed(0)
    model = create(name, **create_kwargs).eval()
    side = size or max(model.meta.min_input_size[-1], 32)
    x = torch.randn(batch, model.meta.input_size[0], side, side)
    with torch.no_grad():
        expected = {"logits": model(x), "maps": model.forward_intermediates(x)}
    differences, failures = {}, []
    for tool in tools:
        want = expected["maps"] if tool == "feature_extractor" or model.features_only else expected["logits"]
        want = list(want) if isinstance(want, (list, tuple)) else [want]
        try:
            with torch.no_grad():
                got = _toolchain_outputs(tool, model, x, compile_backend)
            got = list(got) if isinstance(got, (list, tuple)) else [got]
            _expect(len(got) == len(want) and all(g.shape == w.shape for g, w in zip(got, want)),
                    f"gave shapes {[tuple(g.shape) for g in got]}, eager gives {[tuple(w.shape) for w in want]}")
            differences[tool] = max((g - w).abs().max().item() for g, w in zip(got, want))
            _expect(differences[tool] <= atol, f"outputs differ from eager by {differences[tool]:.3g} (allowed {atol:g})")
        except ConformanceError as exc:
            failures.append(f"{tool}: {exc}")
        except Exception as exc:  # the tool's own refusal: report its first line, go on to the next tool
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            failures.append(f"{tool}: {type(exc).__name__}: {lines[0] if lines else ''}")
    _expect(not failures, f"model {name!r}: " + "; ".join(failures))
    return differences


def perturb_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial affine parameters and running statistics, so a
    conversion that mixes up BN tensors cannot pass a parity check by accident."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                if module.affine and module.weight is not None and module.bias is not None:
                    module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                if module.running_mean is not None and module.running_var is not None:
                    module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return model


def check_conversion(
    source: str,
    model: str,
    source_model: nn.Module,
    *,
    size: int = 64,
    batch: int = 2,
    atol: float = 1e-5,
    seed: int = 0,
    **create_kwargs: Any,
) -> float:
    """Prove the registered ``source/model`` converter: ``source_model``'s state dict,
    converted, loads strictly into ``create(model)`` and gives the same eval outputs
    (max abs difference <= ``atol``), and converting back gives equal tensors under the
    same keys. Returns the max abs difference."""
    converter = get_converter(source, model)
    original = {k: v.detach().clone() for k, v in source_model.state_dict().items()}
    ours = create(model, **{**converter.create_kwargs, **create_kwargs})
    ours.load_state_dict(converter.to_ours(dict(original)), strict=True)
    try:
        diff = max_output_difference(source_model, ours, size, batch=batch, seed=seed)
    except ConversionError as exc:
        raise ConformanceError(f"{source}/{model}: {exc}") from None
    _expect(diff <= atol, f"{source}/{model}: outputs differ by {diff:.3g} (allowed {atol:g})")
    back = converter.from_ours(ours.state_dict())
    _expect(set(back) == set(original), f"{source}/{model}: converting back changes the keys: {sorted(set(back) ^ set(original))[:5]}")
    unequal = [k for k in original if not torch.equal(back[k], original[k])]
    _expect(not unequal, f"{source}/{model}: converting back changes {', '.join(unequal[:5])}")
    return diff


def check_plugin(plugin: str) -> list[tuple[str, str]]:
    """Run the kit on everything the loaded plugin ``plugin`` (its entry-point or
    distribution name) provides: every stem, block and head, every model, and every
    converter whose source library is installed. Returns ``(what, outcome)`` pairs,
    outcome ``"ok"``, ``"skipped: why"`` or ``"FAILED: why"``; never raises for a
    failed check, so one bad component does not hide the others."""
    wanted = plugin.lower().replace("_", "-")
    records = [r for r in default_host().records.values()
               if wanted in {r.name.lower().replace("_", "-"), r.distribution.lower().replace("_", "-")}]
    if not records:
        raise ConformanceError(f"no loaded plugin is called {plugin!r}")
    results = []
    for record in records:
        if record.status != "ok":
            results.append((f"plugin {record.name}", f"FAILED: {record.status}: {record.error}"))
        for kind, names in record.provided.items():
            for name in names:
                results.append((f"{kind} {name}", _run_check(kind, name)))
    return results


def _run_check(kind: str, name: str) -> str:
    import inspect

    try:
        if kind in ("stem", "block", "head"):
            cls = _resolve(kind, name)
            required = [p.name for p in list(inspect.signature(cls).parameters.values())[3 if kind == "block" else 2:]
                        if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD]
            if kind == "stem":
                required = [p for p in required if p != "in_chans"]
            if required:
                return f"skipped: needs options ({', '.join(required)}); its models check it"
            {"stem": lambda: check_stem(name, size=128), "block": lambda: check_block(name),
             "head": lambda: check_head(name)}[kind]()
        elif kind == "model":
            check_model(name)
        elif kind == "converter":
            import importlib.util

            from .factory.conversion import source_model

            converter = get_converter(*name.split("/", 1))
            if importlib.util.find_spec(converter.source) is None:
                return f"skipped: {converter.source} is not installed"
            size = create(converter.model, **converter.create_kwargs).meta.min_input_size[-1]
            check_conversion(converter.source, converter.model, perturb_batchnorm(source_model(converter)),
                             size=max(size, 64), atol=1e-4)
        else:
            return "skipped: no conformance check for datasets"
    except Exception as exc:  # report every failure, of any kind, and go on
        return f"FAILED: {type(exc).__name__}: {exc}"
    return "ok"
