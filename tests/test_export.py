"""Exporting models (``registry_core.inference.export`` and ``registry-core export``): every
format round-trips a model of every bundled family, carries the preprocessing, and a
failed export or check writes nothing.

Exporting every registered model to every format takes minutes; ``examples/export_all.py``
does that. Here each family has a representative."""

import functools
import importlib.util
import json
import sys
import warnings

import onnxruntime as ort
import pytest
import torch

import registry_core
from registry_core.cli import main
from registry_core.errors import ExportError, InputSizeError, WriteError
from registry_core.inference.export import FORMATS, ONNX_ADVICE, SUFFIXES, export, read_export_metadata
from registry_core.model.data_config import DataConfig

# One model per family round-trips in every format; the larger members in TorchScript, where a family's
# own code meets the compiler's restrictions, and torch.export, the capture ONNX export starts from (its
# translation, 12-15 s more per model, is left to examples/export_all.py, which exports every model).
FAMILIES = ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18"]
CASES = [(name, fmt) for name in FAMILIES for fmt in FORMATS] + [
    (name, fmt) for name in ("inception_v3", "resnext50_32x4d") for fmt in ("torchscript", "exported")]


@pytest.fixture
def folder(tmp_path):
    """Where a test writes its artifacts (tmp_path also holds the isolated home)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


@functools.lru_cache(maxsize=1)  # the cases run model by model: each is built once
def random_model(name):
    torch.manual_seed(0)
    return registry_core.create(name)


def small_model(name="lenet5", **options):
    torch.manual_seed(0)
    return registry_core.create(name, **options)


def load_artifact(path, fmt, extra=None):
    """The artifact through its format's own loader, as a deployer without registry-core loads it: a
    function of one tensor. ``extra`` (names -> "") is filled with the recorded entries."""
    extra = {} if extra is None else extra
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            module = torch.jit.load(str(path), _extra_files=extra)
        extra.update({k: v.decode() for k, v in extra.items() if isinstance(v, bytes)})
        return module
    if fmt == "exported":
        return torch.export.load(str(path), extra_files=extra).module()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    extra.update({k: v for k, v in session.get_modelmeta().custom_metadata_map.items() if k in extra})
    return lambda x: [torch.from_numpy(a) for a in session.run(None, {"input": x.numpy()})]


def outputs(value):
    return [value] if isinstance(value, torch.Tensor) else list(value)


@pytest.mark.parametrize("name,fmt", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_every_family_round_trips(name, fmt, folder):
    model = random_model(name)
    assert model.training  # export switches to eval and back
    result = export(model, folder / f"{name}{SUFFIXES[fmt]}", format=fmt)
    assert model.training
    assert result.path.is_file() and result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    assert result.method == {"torchscript": "script", "exported": "torch.export"}.get(fmt, "onnx dynamo opset 20")
    assert result.input_shape[0] is None  # a free batch, checked at batch 1 after capture at 2
    size = model.data_config.eval_size
    assert result.checked_shape == (1, model.data_config.input_size[0], size, size)
    assert read_export_metadata(result.path)["model_name"] == name
    assert [p.name for p in folder.iterdir()] == [result.path.name]  # no temporary file left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_carries_the_preprocessing_and_matches_at_any_batch(fmt, folder):
    """What a deployer without registry-core sees, through torch's or onnxruntime's own API."""
    model = small_model()
    model.pretrained_tag = "digits_v1"
    model.class_names = [f"digit {i}" for i in range(10)]
    model.data_config = DataConfig(input_size=(1, 32, 32), mean=(0.1307,), std=(0.3081,), interpolation="bicubic",
                                   crop_pct=1.0)
    result = export(model, folder / f"lenet{SUFFIXES[fmt]}", format=fmt)
    extra = dict.fromkeys(["model_name", "pretrained_tag", "data_config", "class_names", "input_shape"], "")
    artifact = load_artifact(result.path, fmt, extra)
    assert extra["model_name"] == "lenet5" and extra["pretrained_tag"] == "digits_v1"
    assert DataConfig.from_json(extra["data_config"]) == model.data_config
    assert json.loads(extra["class_names"]) == model.class_names
    assert json.loads(extra["input_shape"]) == ([None, 1, None, None] if fmt == "torchscript" else [None, 1, 32, 32])
    recorded = read_export_metadata(result.path)
    assert recorded == result.metadata and recorded["format"] == fmt and recorded["method"] == result.method
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        expected, (got,) = model.eval()(x), outputs(artifact(x))
    assert got.shape == expected.shape == (3, 10)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[0], got[1])  # distinct images give distinct outputs: the comparison means something


def test_a_weights_file_exports_with_what_it_records(folder):
    model = small_model()
    model.class_names = [f"c{i}" for i in range(10)]
    weights = registry_core.save(model, folder / "lenet5.safetensors")
    result = export(weights, folder / "lenet5.pt2", format="exported")
    recorded = read_export_metadata(result.path)
    assert recorded["model_name"] == "lenet5" and json.loads(recorded["class_names"]) == model.class_names
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_artifact(result.path, "exported")(x), model.eval()(x))


def test_scripting_failure_falls_back_to_tracing_and_says_so(folder, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Python builtin <built-in function id> is currently not supported in Torchscript")

    monkeypatch.setattr(torch.jit, "script", refuse)
    result = export(small_model(), folder / "traced.pt")
    assert result.method == "trace" and "torch.jit.script failed" in result.note and "not supported" in result.note
    assert result.max_abs_diff <= result.tolerance  # checked at batch 1 after tracing at 2: the batch stayed free
    assert read_export_metadata(result.path)["method"] == "trace"


def test_fixed_batch_is_baked_into_the_graph(folder):
    result = export(small_model(), folder / "b4.pt2", format="exported", batch_size=4)
    assert result.input_shape == (4, 1, 32, 32) and result.checked_shape == (4, 1, 32, 32)
    program = load_artifact(result.path, "exported")
    assert program(torch.randn(4, 1, 32, 32)).shape == (4, 10)
    with pytest.raises(Exception, match="4"):
        program(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_features_only_models_export_every_selected_stage(fmt, folder):
    model = small_model("resnet18_cifar", features_only=True, out_indices=(1, 3))
    result = export(model, folder / f"f{SUFFIXES[fmt]}", format=fmt)
    x = torch.randn(2, 3, 32, 32)
    got = outputs(load_artifact(result.path, fmt)(x))
    with torch.no_grad():
        expected = model.eval()(x)
    assert len(got) == len(expected) == 2
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def _perturbed(load):
    """A loader whose artifact is off by 0.01 everywhere: the check must notice."""
    def loader(*args, **kwargs):
        inner = load(*args, **kwargs)
        return lambda x: [t + 0.01 for t in outputs(inner(x))]
    return loader


def _break_loader(fmt, monkeypatch):
    if fmt == "torchscript":
        monkeypatch.setattr(torch.jit, "load", _perturbed(torch.jit.load))
    elif fmt == "exported":
        real = torch.export.load

        class Program:
            def __init__(self, *args, **kwargs):
                self.module = _perturbed(real(*args, **kwargs).module)

        monkeypatch.setattr(torch.export, "load", Program)
    else:
        class Session(ort.InferenceSession):
            def run(self, *args, **kwargs):
                return [a + 0.01 for a in super().run(*args, **kwargs)]
        monkeypatch.setattr(ort, "InferenceSession", Session)


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_catches_an_artifact_that_differs_and_keeps_the_old_file(fmt, folder, monkeypatch):
    out = folder / f"m{SUFFIXES[fmt]}"
    out.write_bytes(b"the previous export")
    _break_loader(fmt, monkeypatch)
    with pytest.raises(ExportError, match=r"differs from the model by 0\.01 .*nothing was written"):
        export(small_model(), out, format=fmt)
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in folder.iterdir()] == [out.name]


def test_check_can_be_skipped(folder, monkeypatch):
    _break_loader("torchscript", monkeypatch)
    result = export(small_model(), folder / "m.pt", check=False)
    assert result.max_abs_diff is None and result.check_summary() == "not checked"


def test_a_failing_exporter_writes_nothing(folder, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("data-dependent control flow\nmore detail")

    monkeypatch.setattr(torch.export, "export", fail)
    with pytest.raises(ExportError, match=r"^torch.export could not export lenet5: RuntimeError: data-dependent control flow$"):
        export(small_model(), folder / "m.pt2", format="exported")
    assert list(folder.iterdir()) == []


def test_bad_requests_are_refused_before_any_work(folder):
    model = small_model()
    with pytest.raises(ExportError, match="unknown export format 'tflite'; choose one of torchscript, exported, onnx"):
        export(model, folder / "m", format="tflite")
    with pytest.raises(WriteError, match="is a folder"):
        export(model, folder)
    with pytest.raises(ExportError, match="batch_size must be a positive integer"):
        export(model, folder / "m.pt", batch_size=0)
    with pytest.raises(InputSizeError, match="at least"):
        export(registry_core.create("googlenet"), folder / "g.pt", image_size=8)
    with pytest.raises(ExportError, match="no such weights file"):
        export(folder / "missing.safetensors", folder / "m.pt")
    with pytest.raises(ExportError, match="expected a registry-core model"):
        export(torch.nn.Linear(2, 2), folder / "m.pt")
    weights = registry_core.save(model, folder / "w.safetensors")
    with pytest.raises(ExportError, match="is the weights file being exported"):
        export(weights, weights)
    assert sorted(p.name for p in folder.iterdir()) == ["w.safetensors"]


@pytest.fixture
def without_onnxscript(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))


def test_missing_onnx_extra_gives_the_install_advice(folder, without_onnxscript):
    with pytest.raises(ExportError) as raised:
        export(small_model(), folder / "m.onnx", format="onnx")
    assert str(raised.value) == f"ONNX export needs onnxscript, which is not installed: {ONNX_ADVICE}"
    assert ONNX_ADVICE == "pip install 'registry-core[onnx]'"
    assert list(folder.iterdir()) == []


def test_onnx_runtime_is_needed_only_for_the_check(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ExportError, match=r"needs onnxruntime, .*registry-core\[onnx\]"):
        export(small_model(), folder / "m.onnx", format="onnx")
    result = export(small_model(), folder / "m.onnx", format="onnx", check=False)
    assert result.max_abs_diff is None and read_export_metadata(result.path)["format"] == "onnx"


def test_read_export_metadata_refuses_what_is_not_an_export(folder):
    (folder / "junk.onnx").write_bytes(b"\xff\x00 not protobuf \xff" * 4)
    with pytest.raises(ExportError, match="neither"):
        read_export_metadata(folder / "junk.onnx")
    with pytest.raises(ExportError, match="no such file"):
        read_export_metadata(folder / "missing.pt")


# --- the command line ---------------------------------------------------------------------------------------------


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_cli_exports_a_weights_file(folder, capsys):
    weights = registry_core.save(small_model(), folder / "lenet5.safetensors")
    out = folder / "lenet5.pt"
    assert main(["export", "--weights", str(weights), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: {weights} as torchscript via script, input (batch, 1, height, width)" in text
    assert "check: max |difference| 0 (allowed 0.000" in text and "1x1x32x32 input, seed 0" in text
    assert read_export_metadata(out)["model_name"] == "lenet5"


def test_cli_exports_a_named_model_with_random_weights(folder, capsys):
    out = folder / "m.onnx"
    assert main(["export", "--model", "lenet5", "--format", "onnx", "--out", str(out), "--image-size", "36",
                 "--batch-size", "2"]) == 0
    text = capsys.readouterr().out
    assert "lenet5 (random weights) as onnx via onnx dynamo opset" in text
    assert "input (2, 1, 36, 36)" in text and "on a 2x1x36x36 input" in text
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[2, 1, 36, 36]]


def test_cli_no_check_says_so(folder, capsys):
    assert main(["export", "--model", "lenet5", "--out", str(folder / "m.pt"), "--no-check"]) == 0
    assert "check: skipped (--no-check)" in capsys.readouterr().out


def test_cli_says_when_it_traced(folder, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported")

    monkeypatch.setattr(torch.jit, "script", refuse)
    assert main(["export", "--model", "lenet5", "--out", str(folder / "m.pt")]) == 0
    text = capsys.readouterr().out
    assert "via trace" in text and "note: torch.jit.script failed (RuntimeError: unsupported); traced instead" in text


def test_cli_check_failure_is_one_line(folder, capsys, monkeypatch):
    _break_loader("torchscript", monkeypatch)
    assert main(["export", "--model", "lenet5", "--out", str(folder / "m.pt")]) == 2
    assert "differs from the model by 0.01" in one_line_error(capsys)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args,message", [
    (["--weights", "{out}/missing.safetensors", "--out", "{out}/m.pt"], "no such weights file"),
    (["--model", "lenet5", "--format", "tflite", "--out", "{out}/m"], "unknown export format 'tflite'"),
    (["--model", "lenet5", "--out", "{out}"], "is a folder"),
    (["--model", "lenet6", "--out", "{out}/m.pt"], "unknown model 'lenet6'; did you mean 'lenet5'"),
    (["--model", "googlenet", "--out", "{out}/m.pt", "--image-size", "8"], "at least 15x15"),
    (["--model", "lenet5", "--out", "{out}/m.pt", "--batch-size", "-1"], "--batch-size: must be at least 1, got -1"),
], ids=["missing-file", "unknown-format", "folder-out", "unknown-model", "small-image", "bad-batch"])
def test_cli_bad_input_is_one_line_exit_2(args, message, folder, capsys):
    assert main(["export", *[a.format(out=folder) for a in args]]) == 2
    assert message in one_line_error(capsys)
    assert list(folder.iterdir()) == []


def test_cli_missing_onnx_extra(folder, capsys, without_onnxscript):
    assert main(["export", "--model", "lenet5", "--format", "onnx", "--out", str(folder / "m.onnx")]) == 2
    assert one_line_error(capsys) == (
        "registry-core: error: ONNX export needs onnxscript, which is not installed: pip install 'registry-core[onnx]'\n")




@pytest.mark.parametrize("args,message", [
    (["--quantize", "int8"], "--quantize int8 needs --calibrate FOLDER"),
    (["--calibrate", "{out}"], "--quantize int8 needs --calibrate FOLDER"),
    (["--quantize", "int8", "--calibrate", "{out}", "--format", "torchscript"], "cannot be combined with --format torchscript"),
    (["--quantize", "int8", "--calibrate", "{out}", "--image-size", "40"], "drop --image-size"),
    (["--quantize", "int8", "--calibrate", "{out}/none"], "no such folder of calibration images"),
    (["--quantize", "int8", "--calibrate", "{out}", "--min-agreement", "2"], "--min-agreement: must be at most 1, got 2"),
    (["--quantize", "int8", "--calibrate", "{out}", "--held-out", "0"], "--held-out: must be above 0, got 0"),
    (["--min-cosine", "0.5"], "go with --quantize int8"),
], ids=["no-calibrate", "no-quantize", "torchscript", "image-size", "no-folder", "agreement", "held-out", "threshold-alone"])
def test_cli_quantize_misuse_is_one_line_exit_2(args, message, folder, capsys):
    out = folder / "m.onnx"
    assert main(["export", "--model", "lenet5", "--out", str(out), *[a.format(out=folder) for a in args]]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()
