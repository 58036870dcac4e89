"""``registry-core benchmark`` and ``inference/benchmark.py`` at tiny settings: the report
has a figure and a ratio for every variant that can run, names the baseline, compares
outputs where weights are shared, and states (not fails on) what cannot run. No timing
is asserted: only that the figures exist and are consistent with each other."""

import json
import subprocess
import sys

import pytest

from registry_core.cli import main
from registry_core.inference.bench_settings import BenchmarkSettings
from registry_core.inference.benchmark import benchmark

TINY = ["--batch-sizes", "2", "--reps", "1", "--warmup", "1", "--min-time", "0", "--threads", "1"]


def test_lenet5_json_has_every_variant_with_its_ratio(capsys):
    args = ["benchmark", "lenet5", *TINY, "--variants", "torchvision", "timm", "eager", "channels_last", "fused",
            "onnxruntime", "int8", "--image-sizes", "36", "--json"]  # not its eval size (32): exported at 36
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["mode"], r["variant"]): r for r in report["results"]}
    assert set(rows) == {("inference", v) for v in ("eager", "channels_last", "fused", "onnxruntime", "int8")} | {
        ("train", "eager"), ("train", "channels_last")}
    for row in rows.values():
        assert row["baseline"] == "eager" and row["image_size"] == 36 and row["batch"] == 2  # torchvision has no lenet5
        assert row["images_per_s"] > 0 and row["ratio"] > 0 and row["best_ratio"] > 0
        assert row["ratio"] == pytest.approx(row["images_per_s"] / rows[(row["mode"], "eager")]["images_per_s"])
    assert rows[("inference", "eager")]["ratio"] == 1.0
    for variant in ("channels_last", "fused", "onnxruntime"):  # the same weights: the same logits
        assert rows[("inference", variant)]["cosine"] > 0.9999
    assert rows[("inference", "int8")]["cosine"] > 0.9 and rows[("train", "eager")]["cosine"] is None
    skipped = {(s["variant"], s["mode"]): s["reason"] for s in report["skipped"]}
    assert skipped[("torchvision", "inference")] == "torchvision has no lenet5" and skipped[("timm", "train")] == "timm has no lenet5"
    assert skipped[("int8", "train")] == "inference only"
    assert report["int8"]["36"]["held_out_images"] == 4 and report["int8"]["36"]["calibration_images"] == 16
    assert report["environment"]["torch_threads"] == 1 and report["settings"]["reps"] == 1


def test_against_torchvision_and_timm_with_shared_weights(capsys):
    assert main(["benchmark", "resnet18", *TINY, "--image-sizes", "32", "--variants", "torchvision", "timm", "eager",
                 "fused+cl"]) == 0
    out = capsys.readouterr().out
    header, *rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert header.split("|")[1:-1] == [f" {h} ".ljust(len(c)) for h, c in zip(
        ["mode", "size", "batch", "variant", "img/s", "ratio", "best ratio", "cosine"], header.split("|")[1:-1])]
    cells = {(r.split("|")[1].strip(), r.split("|")[4].strip()): [c.strip() for c in r.split("|")[1:-1]] for r in rows}
    assert cells[("inference", "torchvision")][5] == "1.00x (torchvision)"
    assert set(cells) == {(m, v) for m in ("inference", "train") for v in ("torchvision", "timm", "eager")} | {
        ("inference", "fused+cl")}
    for variant in ("torchvision", "timm", "eager", "fused+cl"):  # converted weights: every library computes the same
        assert float(cells[("inference", variant)][7]) > 0.9999
    assert out.splitlines()[0].startswith("# resnet18 on ") and "load average" in out
    assert "# not timed: fused+cl (train): inference only" in out


def test_variants_that_cannot_run_are_stated(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    report = benchmark("lenet5", BenchmarkSettings(batch_sizes=(1,), modes=("inference",), reps=1, warmup=1, min_time=0,
                                                   variants=("eager", "onnxruntime", "int8")))
    assert [m.variant for m in report.measurements] == ["eager"]
    reasons = {s.variant: s.reason for s in report.skipped}
    assert reasons == {v: "needs onnxruntime (pip install 'registry-core[onnx]')" for v in ("onnxruntime", "int8")}


@pytest.mark.parametrize("args, message", [
    (["--variants", "eager", "tensorrt"], "unknown variant 'tensorrt'"),
    (["--batch-sizes", "0"], "batch sizes must be positive integers"),
    (["--modes", "serve"], "unknown mode 'serve'"),
    (["--reps", "0"], "reps and warmup must be at least 1"),
    (["--calibrate", "/no/such/folder"], "no such folder of calibration images"),
    (["--device", "tpu"], "device must be cpu or cuda"),
], ids=["variant", "batch", "mode", "reps", "calibrate", "device"])
def test_bad_settings_are_one_line_and_exit_2(args, message, capsys):
    assert main(["benchmark", "lenet5", *args]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 1 and message in err


def test_bad_settings_are_refused_before_torch_is_imported():
    code = ("import sys\nfrom registry_core.cli import main\n"
            "code = main(['benchmark', 'lenet5', '--variants', 'tensorrt'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown variant 'tensorrt'" in result.stderr, result.stderr[-2000:]
