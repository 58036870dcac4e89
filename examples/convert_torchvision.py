"""A torchvision checkpoint converted, verified and loaded, with nothing downloaded.

torchvision's ResNet-18 gets random weights here (standing in for a downloaded
checkpoint), is saved as a .pth, converted with `registry-core convert`, which compares
both libraries' outputs before writing, and the result is loaded with
`registry_core.load` from its metadata alone.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torchvision

import registry_core
from registry_core.testing import perturb_batchnorm

MODEL = "resnet18"

with tempfile.TemporaryDirectory() as tmp:
    checkpoint, ours = Path(tmp) / f"{MODEL}-torchvision.pth", Path(tmp) / f"{MODEL}.safetensors"
    torch.manual_seed(0)
    source = perturb_batchnorm(torchvision.models.get_model(MODEL, weights=None)).eval()
    torch.save(source.state_dict(), checkpoint)

    command = ["convert", "--from", "torchvision", "--model", MODEL, "--checkpoint", str(checkpoint), "--out", str(ours)]
    print("$ registry-core " + " ".join(command).replace(tmp, "<tmp>"))
    subprocess.run([sys.executable, "-m", "registry_core", *command], check=True)

    print("\nmetadata of the converted file:")
    for key, value in registry_core.read_metadata(ours).items():
        print(f"  {key:<18} {value}")

    model = registry_core.load(ours).eval()
    x = torch.randn(2, *model.meta.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        difference = (model(x) - source(x)).abs().max().item()
    print(f"\nloaded {model.model_name} from the file alone; max |difference| to torchvision on a new input: {difference:.2g}")
