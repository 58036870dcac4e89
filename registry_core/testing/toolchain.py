"""A registered model under PyTorch's tools (TorchScript, torch.fx, export, compile)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConformanceError
from ..factory.create import create
from .components import _expect

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
        expected = {"logits": model(x), "maps": model.forward_intermediates(x, intermediates_only=True)}
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


