"""Predicting on ONNX Runtime and int8 quantisation (``inference/runtime.py``,
``inference/quantize.py``, ``registry-core predict --runtime``, ``export --quantize``):
LeNet-5, trained here on scikit-learn's digits, gives the same answers through its ONNX
export as through torch, and its int8 export keeps its accuracy on digits it was not
calibrated on; a poor calibration is refused and writes nothing."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import registry_core
from registry_core.cli import main
from registry_core.errors import DataError, ExportError, QuantizationError
from registry_core.inference import runtime
from registry_core.inference.predict import predict
from registry_core.inference.quantize import quantize
from registry_core.inference.runtime import OnnxModel

CALIBRATION_EVERY = 12  # every 12th digit is a calibration image (150 of 1797); the rest are for scoring


def _png(path, pixels):
    Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """A LeNet-5 trained for three epochs, its fp32 and int8 ONNX exports (calibrated on
    every 12th digit, as PNG files), and the digits as tensors."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("runtime")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REGISTRY_CORE_HOME", str(root / "home"))
        torch.manual_seed(0)
        trainer = registry_core.fit(model="lenet5", dataset="digits", epochs=3, batch_size=32, workers=0, device="cpu",
                                    log_every=1000)
    weights = registry_core.save(trainer.model, root / "digits.safetensors")
    bunch = load_digits()
    folder = root / "calibration"
    folder.mkdir()
    for i in range(0, len(bunch.images), CALIBRATION_EVERY):
        _png(folder / f"digit_{i:04d}.png", bunch.images[i])
    fp32 = registry_core.export(weights, root / "digits.onnx", format="onnx").path
    int8 = quantize(fp32, root / "digits.int8.onnx", calibrate=folder)
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16  # 0..1, as predict takes tensors
    return {"root": root, "weights": weights, "fp32": fp32, "int8": int8.path, "quantized": int8, "folder": folder,
            "images": images, "targets": torch.tensor(bunch.target)}


def _scores(results):
    return [[s.index for s in r.top] for r in results], np.array([[s.probability for s in r.top] for r in results])


def test_onnxruntime_predictions_equal_torchs(lenet):
    images = lenet["images"][:64]
    model = registry_core.load(lenet["weights"])
    want_index, want_p = _scores(predict(model, images, top_k=3))
    for source in (lenet["fp32"], str(lenet["fp32"]), OnnxModel(lenet["fp32"])):
        got_index, got_p = _scores(predict(source, images, top_k=3, batch_size=20))
        assert got_index == want_index
        np.testing.assert_allclose(got_p, want_p, atol=1e-5)
    assert len({i[0] for i in want_index}) == 10  # every digit is among them: the comparison is not of one constant answer


def test_a_weights_file_runs_on_onnxruntime_through_a_cached_export(lenet, monkeypatch):
    model = registry_core.load(lenet["weights"])
    images = lenet["images"][:16]
    want = _scores(predict(model, images, top_k=2))
    for source in (lenet["weights"], model):
        got = _scores(predict(source, images, top_k=2, runtime="onnxruntime"))
        assert got[0] == want[0] and np.allclose(got[1], want[1], atol=1e-5)
    cache = sorted((registry_core.files.home() / "onnx").iterdir())
    assert len(cache) == 2 and all(p.suffix == ".onnx" for p in cache)  # one for the file, one for the model

    def refuse(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "export", refuse)
    predict(lenet["weights"], images[:2], runtime="onnxruntime")  # the cache answers
    model.class_names = [f"digit {d}" for d in range(10)]  # another model: another export
    with pytest.raises(AssertionError, match="exported again"):
        predict(model, images[:2], runtime="onnxruntime")


def test_int8_keeps_top1_within_one_point_of_fp32(lenet):
    scored = torch.ones(len(lenet["images"]), dtype=torch.bool)
    scored[::CALIBRATION_EVERY] = False  # not the images it was calibrated on
    images, targets = lenet["images"][scored], lenet["targets"][scored]
    fp32 = torch.tensor([r.top[0].index for r in predict(registry_core.load(lenet["weights"]), images, top_k=1, batch_size=256)])
    int8 = torch.tensor([r.top[0].index for r in predict(lenet["int8"], images, top_k=1, batch_size=256)])
    accuracy = {name: (labels == targets).float().mean().item() for name, labels in (("fp32", fp32), ("int8", int8))}
    assert accuracy["fp32"] > 0.9
    assert abs(accuracy["int8"] - accuracy["fp32"]) <= 0.01, accuracy
    report = lenet["quantized"].quantization
    assert report.held_out_images == 30 and report.calibration_images == 120  # 150 images, every 5th held out
    assert report.passed and report.top1_agreement >= 0.9 and report.cosine_mean >= 0.98


def test_the_int8_file_records_its_preprocessing_labels_and_calibration(lenet):
    recorded = registry_core.read_export_metadata(lenet["int8"])
    assert json.loads(recorded["class_names"]) == [str(d) for d in range(10)]
    assert recorded["data_config"] == registry_core.load(lenet["weights"]).data_config.to_json()
    assert recorded["quantization"] == "int8" and recorded["calibration"] == lenet["quantized"].quantization.summary()
    assert "int8 static QDQ, per-channel weights" in recorded["method"]
    import onnx

    ops = {node.op_type for node in onnx.load(str(lenet["int8"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format


def test_a_degenerate_calibration_is_refused_and_writes_nothing(lenet, tmp_path):
    """Blank images to calibrate on, real digits held out: the int8 model's input range
    stops at the blank value, every lit pixel is clipped to it, and the logits drift."""
    folder = tmp_path / "blank"
    folder.mkdir()
    digits = lenet["images"][:40]
    for i in range(40):  # sorted names: every 5th (0, 5, ...) is held out to check
        _png(folder / f"image_{i:02d}.png", digits[i, 0].numpy() * 16 if i % 5 == 0 else np.zeros((8, 8)))
    out = tmp_path / "blank.int8.onnx"
    out.write_bytes(b"the previous file")
    with pytest.raises(QuantizationError, match="agrees too little .*nothing was written") as raised:
        quantize(lenet["fp32"], out, calibrate=folder)
    report = raised.value.report
    assert report.held_out_images == 8 and report.calibration_images == 32 and not report.passed
    assert report.cosine_mean < report.min_cosine
    assert out.read_bytes() == b"the previous file" and sorted(p.name for p in tmp_path.iterdir()) == ["blank", out.name]


def test_cli_quantizes_and_refuses_an_impossible_threshold(lenet, tmp_path, capsys):
    out = tmp_path / "cli.int8.onnx"
    args = ["export", "--weights", str(lenet["fp32"]), "--quantize", "int8", "--calibrate", str(lenet["folder"]),
            "--out", str(out), "--held-out", "0.5"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: {lenet['fp32']} as int8 onnx via onnx dynamo opset" in text
    assert "int8 against fp32: top-1 agreement" in text and "on 75 held-out images; calibrated on 75" in text
    assert main([*args, "--out", str(tmp_path / "strict.onnx"), "--min-cosine", "1.0"]) == 2
    out_text, err = capsys.readouterr()
    assert not out_text and len(err.splitlines()) == 1 and "refused: the int8 model agrees too little" in err
    assert "cosine 1.0" in err and not (tmp_path / "strict.onnx").exists()


def test_cli_predicts_with_an_onnx_file_and_with_the_onnxruntime_runtime(lenet, tmp_path, capsys):
    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(6):
        _png(folder / f"digit_{i}.png", lenet["images"][i, 0].numpy() * 16)
    assert main(["predict", "--weights", str(lenet["weights"]), "--json", str(folder)]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["predict", "--weights", str(lenet["weights"]), "--runtime", "onnxruntime", "--json", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "exported" in err and "later runs reuse it" in err
    for got in (json.loads(out), *(_cli_json(capsys, ["--weights", str(lenet[k])], folder) for k in ("fp32", "int8"))):
        assert [r["predictions"][0]["label"] for r in got] == [r["predictions"][0]["label"] for r in want]
    for got_entry, want_entry in zip(json.loads(out), want):
        for g, w in zip(got_entry["predictions"], want_entry["predictions"]):
            assert g["index"] == w["index"] and g["probability"] == pytest.approx(w["probability"], abs=1e-5)


def _cli_json(capsys, args, folder):
    assert main(["predict", *args, "--json", str(folder)]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_fixed_batch_export_is_fed_whole_batches(lenet, tmp_path):
    fixed = registry_core.export(lenet["weights"], tmp_path / "b4.onnx", format="onnx", batch_size=4).path
    model = OnnxModel(fixed)
    assert model.fixed_batch == 4
    images = lenet["images"][:10]  # 4 + 4 + 2, the last padded
    assert _scores(predict(model, images, top_k=3, batch_size=7))[0] == _scores(predict(lenet["fp32"], images, top_k=3))[0]


@pytest.mark.parametrize("args, message", [
    (["--weights", "{fp32}", "--runtime", "torch"], "is an ONNX file: it runs with --runtime onnxruntime, not torch"),
    (["--weights", "{fp32}", "--model", "lenet5"], "an .onnx file names its own model"),
    (["--weights", "{fp32}", "--device", "tpu"], "the onnxruntime runtime cannot run on 'tpu'"),
], ids=["onnx-on-torch", "onnx-with-model", "bad-device"])
def test_cli_runtime_misuse_is_one_line(lenet, capsys, args, message):
    image = str(lenet["folder"] / "digit_0000.png")
    assert main(["predict", *[a.format(fp32=lenet["fp32"]) for a in args], image]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 1 and message in err


def test_without_onnxruntime_the_refusal_names_it(lenet, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    image = str(lenet["folder"] / "digit_0000.png")
    assert main(["predict", "--weights", str(lenet["weights"]), "--runtime", "onnxruntime", image]) == 2
    assert capsys.readouterr().err == ("registry-core: error: --runtime onnxruntime needs onnxruntime, which is not "
                                       "installed: pip install 'registry-core[onnx]'\n")
    with pytest.raises(ExportError, match=r"int8 quantisation needs onnxruntime, .*registry-core\[onnx\]"):
        quantize(lenet["fp32"], tmp_path / "m.onnx", calibrate=lenet["folder"])
    assert main(["export", "--weights", str(lenet["fp32"]), "--quantize", "int8", "--calibrate", str(lenet["folder"]),
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert "int8 quantisation needs onnxruntime" in capsys.readouterr().err
    with pytest.raises(ExportError, match="needs onnxruntime"):
        predict(lenet["fp32"], lenet["images"][:1])
    assert not (tmp_path / "m.onnx").exists()


def test_files_that_are_not_ours_or_not_usable_are_refused(lenet, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load(str(lenet["fp32"]))  # a file whose data config prepares 28 x 28 images for a 32 x 32 graph
    entry = next(e for e in proto.metadata_props if e.key == "data_config")
    entry.value = entry.value.replace("[1, 32, 32]", "[1, 28, 28]")
    onnx.save(proto, str(tmp_path / "resized.onnx"))
    resized = OnnxModel(tmp_path / "resized.onnx")
    assert resized(torch.zeros(2, 1, 32, 32)).shape == (2, 10)  # prepared tensors still run
    with pytest.raises(ExportError, match="the graph takes 32x32 images, but the data config it records prepares 28x28"):
        predict(resized, lenet["images"][:1])
    with pytest.raises(ExportError, match="cannot prepare calibration images"):
        quantize(resized.path, tmp_path / "resized.int8.onnx", calibrate=lenet["folder"])

    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "plain",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 10])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(plain))
    with pytest.raises(ExportError, match="records no data config"):
        OnnxModel(plain)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ExportError, match="onnxruntime cannot open it"):
        OnnxModel(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="is an ONNX file: it runs on onnxruntime"):
        predict(lenet["fp32"], lenet["images"][:1], runtime="torch")
    with pytest.raises(ExportError, match="needs a registry-core model, a weights file or an .onnx file, not Linear"):
        predict(torch.nn.Linear(2, 2), lenet["images"][:1], runtime="onnxruntime")
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        predict(lenet["fp32"], lenet["images"][:1], runtime="tensorrt")
    with pytest.raises(ExportError, match="is the fp32 file being quantised"):
        quantize(lenet["fp32"], lenet["fp32"], calibrate=lenet["folder"])
    with pytest.raises(ExportError, match="already quantised"):
        quantize(lenet["int8"], tmp_path / "twice.onnx", calibrate=lenet["folder"])
    with pytest.raises(DataError, match="at least 2 images"):
        quantize(lenet["fp32"], tmp_path / "one.onnx", calibrate=lenet["images"][:1])
    with pytest.raises(ValueError, match="held_out must be above 0"):
        quantize(lenet["fp32"], tmp_path / "m.onnx", calibrate=lenet["folder"], held_out=0.9)
    assert not list(tmp_path.glob("*int8*")) and not (tmp_path / "twice.onnx").exists()
