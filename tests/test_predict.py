"""``predict`` and ``registry-core predict``: LeNet-5, trained here on scikit-learn's
digits, names digits written as PNG files, with the class names its weights file
records; any mix of paths, PIL images and tensors, in any batch size, gives the same
answers; a bad image, weights file or model name is one line and exit code 2."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import registry_core
from registry_core import DataError
from registry_core.cli import main
from registry_core.factory.store import store_path
from registry_core.inference import predict as predicting
from registry_core.inference.predict import find_images, predict, read_image

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MODES = ["L", "L", "L", "L", "RGB", "RGB", "RGB", "RGBA", "P", "L"]  # how digit d's file is written


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A LeNet-5 trained for three epochs (a few seconds; 95% on the validation split), its file renamed to words,
    and for each digit one image the trainer's own validation pipeline calls right
    with confidence, written as an 8 x 8 PNG (grey, RGB, RGBA or palette)."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REGISTRY_CORE_HOME", str(root / "home"))
        # no output folder: its loss curves (matplotlib) would cost more than the training; the
        # file is saved as the trainer saves its own, with the class names it set on the model
        trainer = registry_core.fit(model="lenet5", dataset="digits", epochs=3, batch_size=32, workers=0, device="cpu",
                                    log_every=1000)
    run = registry_core.save(trainer.model, root / "last.safetensors")
    model = registry_core.load(run)
    bunch = load_digits()
    raw = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16  # as the digits dataset gives them
    with torch.no_grad():
        model.eval()
        inputs = trainer._inputs(torch.stack([trainer.val_set.transform(image) for image in raw]))
        probabilities = model(inputs).softmax(1)
    folder = root / "images"
    folder.mkdir()
    paths = []
    for digit in range(10):
        index = next(i for i in range(len(raw)) if bunch.target[i] == digit and probabilities[i, digit] > 0.9)
        path = folder / f"digit_{digit}.png"
        Image.fromarray(np.round(bunch.images[index] * 255 / 16).astype(np.uint8)).convert(MODES[digit]).save(path)
        paths.append(path)
    model.class_names = WORDS
    named = registry_core.save(model, root / "named.safetensors")
    return {"run": run, "named": named, "folder": folder, "paths": paths}


def test_predict_names_each_digit_with_the_files_class_names(digits):
    results = predict(registry_core.load(digits["named"]), digits["paths"], top_k=3)
    assert [r.label for r in results] == WORDS
    assert [r.image for r in results] == [str(p) for p in digits["paths"]]
    for result in results:
        assert len(result.top) == 3 and result.probability > 0.5
        assert [s.probability for s in result.top] == sorted((s.probability for s in result.top), reverse=True)
        assert all(WORDS[s.index] == s.label for s in result.top)


def test_the_trainers_own_file_records_the_digit_names(digits):
    model = registry_core.load(digits["run"])
    assert model.class_names == [str(d) for d in range(10)]
    assert [r.label for r in predict(model, digits["paths"])] == [str(d) for d in range(10)]
    model.class_names = None  # no names: the class index stands in
    (result,) = predict(model, digits["paths"][3], top_k=10)
    assert result.label == "3" and all(s.label == str(s.index) for s in result.top)
    assert sum(s.probability for s in result.top) == pytest.approx(1.0, abs=1e-5)


def test_cli_table_names_each_digit(digits, capsys):
    assert main(["predict", "--weights", str(digits["named"]), "--top-k", "1", *map(str, digits["paths"])]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["image", "#", "label", "probability"]
    assert [row.split()[:3] for row in rows] == [[str(p), "1", word] for p, word in zip(digits["paths"], WORDS)]


def test_cli_json_for_a_folder_and_a_glob(digits, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(digits["folder"], folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    assert main(["predict", "--weights", str(digits["named"]), "--json", "--top-k", "2", str(folder)]) == 0
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert [r["image"] for r in results] == [str(folder / f"digit_{d}.png") for d in range(10)]
    assert [r["predictions"][0]["label"] for r in results] == WORDS
    assert all(len(r["predictions"]) == 2 and set(r["predictions"][0]) == {"label", "index", "probability"} for r in results)
    assert err.strip() == f"{folder}: skipped 1 non-image file"
    assert main(["predict", "--weights", str(digits["named"]), "--json", str(folder / "digit_[2-4].png")]) == 0
    assert [r["predictions"][0]["label"] for r in json.loads(capsys.readouterr().out)] == WORDS[2:5]


def test_cli_pretrained_takes_the_stores_file(digits, capsys):
    store = store_path("lenet5")  # under this test's REGISTRY_CORE_HOME
    store.parent.mkdir(parents=True)
    shutil.copy(digits["named"], store)
    image = str(digits["paths"][7])
    assert main(["predict", "--model", "lenet5", "--pretrained", "--json", image]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] == "seven"
    assert main(["predict", "--model", "lenet5", "--weights", str(digits["named"]), "--json", image]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] == "seven"


def test_paths_pil_images_and_tensors_agree_in_any_batch_size(digits):
    model = registry_core.load(digits["named"])
    images = [read_image(p) for p in digits["paths"]]
    grey = torch.stack([torch.from_numpy(np.asarray(image.convert("L")).copy())[None] for image in images])
    by_path = predict(model, digits["paths"], top_k=10)
    mixed = [digits["paths"][0], images[1], grey[2], grey[3].float() / 255, *images[4:]]
    whole = predict(model, mixed, top_k=10)
    for results in (predict(model, mixed, top_k=10, batch_size=b) for b in (1, 3)):  # sums may group differently
        for got, want in zip(results, whole):
            assert [s.index for s in got.top] == [s.index for s in want.top]
            np.testing.assert_allclose([s.probability for s in got.top], [s.probability for s in want.top], atol=1e-6)
    for results in (whole, predict(model, grey, top_k=10)):
        assert [r.label for r in results] == WORDS
        for got, want in zip(results, by_path):
            # a tensor is resized by torch, a file by PIL: the pixels may differ by one grey level
            np.testing.assert_allclose([s.probability for s in got.top], [s.probability for s in want.top], atol=1e-3)
    names = [r.image for r in predict(model, [Image.open(digits["paths"][0]), images[1], grey[2]])]
    assert names == [str(digits["paths"][0]), "<image 1>", "<tensor 2>"]  # a PIL image opened from a file keeps its name
    assert len(predict(model, images[0])) == 1


def test_the_models_mode_is_restored_and_a_features_model_refused(digits):
    model = registry_core.load(digits["named"]).train()
    predict(model, digits["paths"][:2])
    assert model.training
    with pytest.raises(ValueError, match="features_only"):
        predict(registry_core.create("lenet5", features_only=True), digits["paths"][:1])
    with pytest.raises(ValueError, match="top_k"):
        predict(model, digits["paths"][:1], top_k=0)


def _bad_images(folder):
    """Each way an image file can be unusable, and what the error must say."""
    text = folder / "text.png"
    text.write_text("this is not a png")
    truncated = folder / "truncated.png"
    whole = (folder / "whole.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(whole)
    truncated.write_bytes(whole.read_bytes()[:300])
    return [(folder / "missing.jpg", "no such image file"), (text, "not an image"),
            (truncated, "damaged or truncated"), (folder, "a folder, not an image")]


def test_unreadable_images_are_data_errors_naming_the_file(digits, tmp_path):
    model = registry_core.load(digits["named"])
    for path, message in _bad_images(tmp_path):
        with pytest.raises(DataError, match=message) as raised:
            predict(model, [digits["paths"][0], path])
        assert str(raised.value).startswith(str(path))


@pytest.mark.parametrize("case, message", [
    ("no images", "no images found in"),
    ("no match", "no images found in"),
    ("missing", "no such file or folder"),
    ("unreadable", "not an image"),
    ("no weights file", "no such weights file"),
    ("unknown model", "unknown model 'lenet55'"),
    ("no weights", "--weights FILE, or --model NAME --pretrained"),
])
def test_cli_user_errors_are_one_line_and_exit_2(digits, tmp_path, capsys, case, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "readme.txt").write_text("no images here")
    weights, image = ["--weights", str(digits["named"])], str(digits["paths"][0])
    args = {"no images": [*weights, str(tmp_path / "empty"), str(tmp_path / "readme.txt*")],
            "no match": [*weights, str(tmp_path / "*.jpg")],
            "missing": [*weights, str(tmp_path / "nope.png")],
            "unreadable": [*weights, str(_bad_images(tmp_path)[1][0])],
            "no weights file": ["--weights", str(tmp_path / "nope.safetensors"), image],
            "unknown model": ["--model", "lenet55", "--pretrained", image],
            "no weights": ["--model", "lenet5", image]}[case]
    assert main(["predict", *args]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_find_images_sorts_folders_and_counts_what_it_skips(digits, tmp_path):
    (tmp_path / "b.PNG").write_bytes(digits["paths"][0].read_bytes())
    (tmp_path / "a.jpeg").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"")
    found = find_images([tmp_path, digits["paths"][1]])
    assert found.files == [tmp_path / "a.jpeg", tmp_path / "b.PNG", digits["paths"][1]]
    assert found.skipped == {str(tmp_path): 1}


def test_a_progress_bar_only_when_asked_or_long_on_a_terminal(digits, capsys, monkeypatch):
    model = registry_core.load(digits["named"])
    predict(model, digits["paths"], progress=True)
    assert "predict" in capsys.readouterr().err
    predict(model, digits["paths"] * (predicting.LONG // 10))  # long, but stderr is not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    predict(model, digits["paths"])  # a terminal, but short
    assert capsys.readouterr().err == ""
    predict(model, digits["paths"] * (predicting.LONG // 10))
    assert "image" in capsys.readouterr().err


def test_predict_help_imports_no_torch():
    code = ("import sys\nfrom registry_core.cli import main\ntry:\n    main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--pretrained" in result.stdout, result.stderr[-2000:]
