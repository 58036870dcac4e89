"""Reading foreign checkpoints safely, running converters, the weights store, and `registry-core convert`."""

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from components import make_plugin
from safetensors.torch import load_file, save_file

from registry_core import ConversionError, Converter, WeightsError, create, hookimpl, load, model_info, read_metadata, save
from registry_core.cli import main
from registry_core.factory.conversion import convert_from, convert_to, source_model
from registry_core.factory.library_caches import CACHE_PREFERENCE, by_cache_preference
from registry_core.plugins import host as plugins
from registry_core.testing import perturb_batchnorm
from registry_core.weights.checkpoints import read_checkpoint, read_foreign

pytestmark = pytest.mark.usefixtures("one_thread")  # small forward passes: faster on one thread


def needs_converter(key: str) -> None:
    if key not in plugins.default_host().registry.names("converter"):
        pytest.skip(f"no {key} converter registered")


@pytest.fixture
def library_caches(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """Empty torch hub and Hugging Face caches under tmp_path: (TORCH_HOME, HF_HOME)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "torch", tmp_path / "hf"


# ---- reading checkpoints ------------------------------------------------------------------


def test_training_checkpoints_are_unwrapped_and_wrapper_prefixes_removed(tmp_path):
    state = {"conv.weight": torch.randn(2, 3), "fc.bias": torch.randn(2)}
    wrapped = {"epoch": 4, "state_dict": {f"_orig_mod.module.{k}": v for k, v in state.items()}, "optimizer": {}}
    torch.save(wrapped, tmp_path / "a.pth")
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "b.bin")
    save_file({f"module.{k}": v for k, v in state.items()}, tmp_path / "c.safetensors")
    torch.save({"state_dict": {f"model._orig_mod.{k}": v for k, v in state.items()}, "epoch": 1}, tmp_path / "d.ckpt")
    torch.save({**{f"net.{k}": v for k, v in state.items()}, "epoch": 2, "note": "x"}, tmp_path / "e.pth.tar")
    for name in ("a.pth", "b.bin", "c.safetensors", "d.ckpt", "e.pth.tar"):
        got = read_checkpoint(tmp_path / name)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    assert read_foreign(tmp_path / "a.pth").steps == ("entry 'state_dict'", "prefix '_orig_mod.' removed",
                                                      "prefix 'module.' removed")
    lightning = read_foreign(tmp_path / "d.ckpt")
    assert lightning.unwrapped == "entry 'state_dict'; prefix 'model.' removed; prefix '_orig_mod.' removed"
    plain = read_foreign(tmp_path / "e.pth.tar")
    assert plain.steps == ("dropped epoch, note (not weights)", "prefix 'net.' removed")
    assert plain.keeping_holder_prefix().state.keys() == {f"net.{k}" for k in state}


class CreatesAFile:
    """Unpickling this would run code: it creates the file named by ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def bad_files(tmp: Path) -> dict[str, Path]:
    good = tmp / "good.pth"
    torch.save({"w": torch.randn(64, 64)}, good)
    files = {}

    def write(name, data):
        files[name] = tmp / name
        files[name].write_bytes(data)

    write("empty.pth", b"")
    write("empty.safetensors", b"")
    write("random.pth", os.urandom(4096))
    write("random.safetensors", os.urandom(4096))
    write("truncated.pth", good.read_bytes()[: good.stat().st_size // 2])
    save_file({"w": torch.randn(64, 64)}, tmp / "full.safetensors")
    write("truncated.safetensors", (tmp / "full.safetensors").read_bytes()[:-100])
    write("text.pth", b"just some text\n" * 10)
    write("pickled-list.pth", pickle.dumps([1, 2, 3]))
    torch.save({"epoch": 3, "note": "x", "state_dict": {"w": "not a tensor"}}, tmp / "not-weights.pth")
    files["not-weights.pth"] = tmp / "not-weights.pth"
    torch.save({}, tmp / "empty-dict.pth")
    files["empty-dict.pth"] = tmp / "empty-dict.pth"
    write("pickle-as.safetensors", good.read_bytes())
    write("weights.npz", good.read_bytes())
    return files


def test_bad_files_are_clean_errors(tmp_path):
    for path in bad_files(tmp_path).values():
        with pytest.raises(WeightsError, match=str(path.name)):
            read_checkpoint(path)
        if path.suffix == ".safetensors":
            for reader in (read_metadata, load, lambda p: create("lenet5", weights=p)):
                with pytest.raises(WeightsError, match=str(path.name)):
                    reader(path)
    with pytest.raises(WeightsError, match="no such"):
        read_checkpoint(tmp_path / "missing.pth")


@pytest.mark.parametrize("wrap", [False, True])
def test_a_pickle_with_code_is_refused_and_never_runs(tmp_path, wrap):
    victim = tmp_path / "pwned"
    payload = CreatesAFile(victim)
    obj = {"state_dict": {"w": torch.zeros(1), "x": payload}} if wrap else payload
    torch.save(obj, tmp_path / "evil.pth")  # torch.save pickles; only loading would run it
    with open(tmp_path / "evil-plain.pth", "wb") as handle:
        pickle.dump(obj, handle)
    for name in ("evil.pth", "evil-plain.pth"):
        with pytest.raises(WeightsError, match="nothing in it was executed"):
            read_checkpoint(tmp_path / name)
    assert not victim.exists()


# ---- converters (a test converter on the tiny model) -------------------------------------


def offset_converter(source: str, model: str, offset: float = 0.0, **fields) -> Converter:
    """A converter whose layout prefixes every key with ``net.``; ``offset`` corrupts one tensor."""

    def to_ours(state):
        out = {k.removeprefix("net."): v for k, v in state.items()}
        out["head.fc.bias"] = out["head.fc.bias"] + offset
        return out

    return Converter(source, model, to_ours, lambda s: {f"net.{k}": v for k, v in s.items()}, **fields)


class ConverterPlugin:
    def __init__(self, *converters, override=False):
        self.converters, self.override = converters, override

    @hookimpl
    def register_converters(self, register):
        for converter in self.converters:
            register(converter, override=self.override)


def test_convert_records_provenance_and_round_trips(fresh_host, tmp_path):
    fresh_host(make_plugin())
    fresh_host(ConverterPlugin(offset_converter("mylib", "tiny", version="7")), "mylib-converters")
    torch.manual_seed(0)
    theirs = {f"net.{k}": v for k, v in create("tiny").state_dict().items()}
    torch.save({"model": theirs}, tmp_path / "theirs.pth")
    with pytest.warns(UserWarning, match="outputs not compared"):
        provenance = convert_from("mylib", "tiny", tmp_path / "theirs.pth", tmp_path / "ours.safetensors")
    header = read_metadata(tmp_path / "ours.safetensors")
    assert provenance.items() <= header.items()
    assert header["source"] == "mylib" and header["converter"] == "mylib/tiny" and header["converter_version"] == "7"
    assert header["source_sha256"] == hashlib.sha256((tmp_path / "theirs.pth").read_bytes()).hexdigest()
    assert header["model"] == "tiny" and "max_abs_diff" not in header
    with pytest.warns(UserWarning):
        convert_to("mylib", "tiny", tmp_path / "ours.safetensors", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back.keys() == theirs.keys() and all(torch.equal(back[k], theirs[k]) for k in theirs)


def test_convert_to_refuses_a_file_of_another_model(fresh_host, tmp_path):
    fresh_host(make_plugin())
    fresh_host(ConverterPlugin(offset_converter("mylib", "tiny_aux")), "mylib-converters")
    save(create("tiny"), tmp_path / "tiny.safetensors")
    with pytest.raises(WeightsError, match="holds weights for 'tiny', not 'tiny_aux'"):
        convert_to("mylib", "tiny_aux", tmp_path / "tiny.safetensors", tmp_path / "out.pth")


@pytest.fixture
def resnet18_checkpoint(tmp_path):
    needs_converter("torchvision/resnet18")
    import torchvision

    torch.manual_seed(0)
    source = perturb_batchnorm(torchvision.models.resnet18())
    path = tmp_path / "resnet18-tv.pth"
    torch.save(source.state_dict(), path)
    return source, path


def test_verification_measures_and_fails_above_tolerance(resnet18_checkpoint, tmp_path, monkeypatch, capsys):
    _, checkpoint = resnet18_checkpoint
    out = tmp_path / "ok.safetensors"
    provenance = convert_from("torchvision", "resnet18", checkpoint, out, verify_size=64)
    assert float(read_metadata(out)["max_abs_diff"]) == float(provenance["max_abs_diff"]) <= 1e-4

    host = plugins.PluginHost()
    host.load_entry_points()
    good = host.registry.get("converter", "torchvision/resnet18").obj
    broken = Converter("torchvision", "resnet18", lambda s: {**good.to_ours(s), "head.fc.bias": good.to_ours(s)["head.fc.bias"] + 0.01},
                       good.from_ours, source_model=good.source_model)
    host.add_plugin(ConverterPlugin(broken, override=True), "broken-converter")
    monkeypatch.setattr(plugins, "_default", host)
    args = ["convert", "--from", "torchvision", "--model", "resnet18", "--checkpoint", str(checkpoint), "--verify-size", "64"]
    assert main([*args, "--out", str(tmp_path / "bad.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outputs differ by 0.01" in err
    assert not (tmp_path / "bad.safetensors").exists()
    assert main([*args, "--out", str(tmp_path / "unchecked.safetensors"), "--no-verify"]) == 0
    assert "max_abs_diff" not in read_metadata(tmp_path / "unchecked.safetensors")


def file_dtypes(path) -> set[torch.dtype]:
    return {tensor.dtype for tensor in load_file(path).values()}


def test_conversion_keeps_the_checkpoints_floating_dtype_unless_told(resnet18_checkpoint, tmp_path):
    source, checkpoint = resnet18_checkpoint
    half = tmp_path / "resnet18-half.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}, half)
    kept = tmp_path / "kept.safetensors"
    provenance = convert_from("torchvision", "resnet18", half, kept, verify_size=32)
    assert file_dtypes(kept) == {torch.float16, torch.int64}  # num_batches_tracked stays an integer
    assert provenance["dtype"] == read_metadata(kept)["dtype"] == "float16"
    assert float(provenance["max_abs_diff"]) <= 1e-4
    plain = tmp_path / "f32.safetensors"
    convert_from("torchvision", "resnet18", checkpoint, plain, verify=False)
    assert file_dtypes(plain) == {torch.float32, torch.int64}

    widened = tmp_path / "widened.safetensors"
    assert convert_from("torchvision", "resnet18", half, widened, verify=False, dtype="float32")["dtype"] == "float32"
    assert file_dtypes(widened) == {torch.float32, torch.int64}
    expected = {k: v.half() for k, v in load_file(kept).items() if v.is_floating_point()}
    assert all(torch.equal(load_file(widened)[k].half(), v) for k, v in expected.items())

    args = ["convert", "--from", "torchvision", "--model", "resnet18", "--checkpoint", str(checkpoint), "--no-verify"]
    assert main([*args, "--out", str(tmp_path / "bf16.safetensors"), "--dtype", "bfloat16"]) == 0
    assert file_dtypes(tmp_path / "bf16.safetensors") == {torch.bfloat16, torch.int64}
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "no.safetensors"), "--dtype", "int8"])
    with pytest.raises(ConversionError, match="not one of float32, float16, bfloat16"):
        convert_from("torchvision", "resnet18", checkpoint, tmp_path / "no.safetensors", dtype=torch.int8)


def test_export_keeps_our_files_dtype_unless_told(resnet18_checkpoint, tmp_path):
    _, checkpoint = resnet18_checkpoint
    ours = tmp_path / "bf16.safetensors"
    convert_from("torchvision", "resnet18", checkpoint, ours, verify=False, dtype="bfloat16")
    convert_to("torchvision", "resnet18", ours, tmp_path / "back.pth", verify_size=32)
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert {v.dtype for v in back.values()} == {torch.bfloat16, torch.int64}
    convert_to("timm", "resnet18", ours, tmp_path / "timm.safetensors", verify=False, dtype="float16")
    assert file_dtypes(tmp_path / "timm.safetensors") == {torch.float16, torch.int64}


# ---- the weights store ---------------------------------------------------------------------


def test_pretrained_loads_from_the_store(tmp_path):
    torch.manual_seed(0)
    model = create("lenet5")
    save(model, Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "lenet5.safetensors")
    loaded = create("lenet5", pretrained=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_missing_pretrained_weights_say_which_command_to_run(tmp_path, library_caches):
    needs_converter("torchvision/resnet18")
    store = Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "resnet18.tv_in1k.safetensors"
    with pytest.raises(WeightsError) as info:
        create("resnet18", pretrained=True)
    message = str(info.value)
    assert f"place resnet18-f37072fd.pth in {library_caches[0] / 'hub' / 'checkpoints'}" in message
    assert f"into {library_caches[1] / 'hub' / 'models--timm--resnet18.tv_in1k'}" in message
    assert f"registry-core convert --from LIBRARY --model resnet18 --tag tv_in1k --checkpoint FILE --out {store}" in message
    with pytest.raises(WeightsError, match="no converter is registered"):
        create("lenet5", pretrained=True)


def test_torchvision_cache_is_converted_once_into_the_store(resnet18_checkpoint, tmp_path, library_caches):
    source, checkpoint = resnet18_checkpoint
    from torchvision.models import get_model_weights

    cached = library_caches[0] / "hub" / "checkpoints" / Path(get_model_weights("resnet18").DEFAULT.url).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(checkpoint.read_bytes())
    with pytest.warns(UserWarning, match="converting torchvision's cached"):
        model = create("resnet18", pretrained=True).eval()
    store = Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "resnet18.tv_in1k.safetensors"
    assert read_metadata(store)["source_sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source.eval()(x))
    stamp = store.stat().st_mtime_ns
    create("resnet18", pretrained=True)
    assert store.stat().st_mtime_ns == stamp


def fill_timm_hub_cache(hf_home: Path, name: str) -> torch.nn.Module:
    """A timm model with random weights, saved where timm's hub download would be."""
    import timm
    from timm.models import get_pretrained_cfg

    repo = get_pretrained_cfg(name).hf_hub_id
    folder = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    (folder / "snapshots" / "0123abcd").mkdir(parents=True)
    torch.manual_seed(0)
    source = perturb_batchnorm(timm.create_model(name, pretrained=False)).eval()
    save_file(source.state_dict(), folder / "snapshots" / "0123abcd" / "model.safetensors")
    return source


def test_timm_hub_cache_is_found(library_caches, tmp_path):
    """timm's default resnet18 weights (its a1_in1k tag) from the hub cache, with their own preprocessing."""
    needs_converter("timm/resnet18")
    from timm.models import get_pretrained_cfg

    source = fill_timm_hub_cache(library_caches[1], "resnet18")
    tag = get_pretrained_cfg("resnet18").tag
    with pytest.warns(UserWarning, match="converting timm's cached"):
        model = create(f"resnet18.{tag}", pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))
    assert model.pretrained_tag == tag and model.data_config.interpolation == get_pretrained_cfg("resnet18").interpolation
    assert (Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / f"resnet18.{tag}.safetensors").is_file()


def test_torchvision_cache_comes_before_timms(resnet18_checkpoint, tmp_path, library_caches):
    """Both caches hold resnet18: the documented order, not the converters' names, decides."""
    needs_converter("timm/resnet18")
    from torchvision.models import get_model_weights

    _, checkpoint = resnet18_checkpoint
    assert CACHE_PREFERENCE == ("torchvision", "timm")
    cached = library_caches[0] / "hub" / "checkpoints" / Path(get_model_weights("resnet18").DEFAULT.url).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(checkpoint.read_bytes())
    fill_timm_hub_cache(library_caches[1], "resnet18.tv_in1k")
    with pytest.warns(UserWarning, match="converting torchvision's cached"):
        create("resnet18", pretrained=True)
    header = read_metadata(Path(os.environ["REGISTRY_CORE_HOME"]) / "weights" / "resnet18.tv_in1k.safetensors")
    assert (header["source"], header["source_sha256"]) == ("torchvision", hashlib.sha256(cached.read_bytes()).hexdigest())


def test_cache_order_puts_other_sources_last():
    def named(source):
        return Converter(source, "m", dict, dict)

    ordered = by_cache_preference([named("zoo"), named("timm"), named("acme"), named("torchvision")])
    assert [c.source for c in ordered] == ["torchvision", "timm", "acme", "zoo"]


# ---- the command, in a subprocess, both directions, for each family registered -------------

FAMILIES = [
    ("torchvision", "resnet18"),
    ("torchvision", "alexnet"),
    ("torchvision", "vgg16"),
    ("timm", "vgg16"),
    ("torchvision", "googlenet"),
    ("torchvision", "inception_v3"),
    ("timm", "inception_v3"),
]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("registry-core")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "registry_core"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=600, env=ONE_THREAD)


# Several commands in one fresh process (imports dominate a small conversion): stops at the first failure.
RUN_COMMANDS = "import json, sys\nfrom registry_core.cli import main\nfor argv in json.loads(sys.argv[1]):\n    code = main(argv)\n    if code:\n        sys.exit(code)"


def run_cli_commands(*commands: list) -> subprocess.CompletedProcess:
    argvs = json.dumps([[str(a) for a in command] for command in commands])
    return subprocess.run([sys.executable, "-c", RUN_COMMANDS, argvs], capture_output=True, text=True, timeout=600, env=ONE_THREAD)


@pytest.mark.parametrize("source,model", FAMILIES, ids=[f"{s}-{m}" for s, m in FAMILIES])
def test_cli_converts_both_ways(source, model, tmp_path):
    needs_converter(f"{source}/{model}")
    converter = plugins.default_host().registry.get("converter", f"{source}/{model}").obj
    torch.manual_seed(0)
    original = perturb_batchnorm(source_model(converter)).state_dict()
    theirs = tmp_path / ("theirs.pth" if source == "torchvision" else "theirs.safetensors")
    torch.save(original, theirs) if source == "torchvision" else save_file(original, theirs)
    size = str(max(64, model_info(model)["min_input_size"][-1]))
    ours, back = tmp_path / "ours.safetensors", tmp_path / ("back.safetensors" if source == "timm" else "back.pth")

    done = run_cli_commands(
        ["convert", "--from", source, "--model", model, "--checkpoint", theirs, "--out", ours, "--verify-size", size],
        ["convert", "--to", source, "--model", model, "--checkpoint", ours, "--out", back, "--verify-size", size],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("max |difference|") == 2
    header = read_metadata(ours)
    assert header["converter"] == f"{source}/{model}" and float(header["max_abs_diff"]) <= 1e-4
    assert load(ours).model_name == model
    exported = load_file(back) if source == "timm" else torch.load(back, weights_only=True)
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[k], original[k]) for k in original)
    with torch.device("meta"):
        fresh = source_model(converter)
    fresh.load_state_dict(exported, strict=True, assign=True)


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"garbage")
    done = run_cli("convert", "--from", "torchvision", "--model", "lenet5", "--checkpoint", tmp_path / "x.pth", "--out", tmp_path / "y.safetensors")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "registry-core: error:" in done.stderr
    assert "Traceback" not in done.stderr
