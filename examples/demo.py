"""The main job of `make demo`: what the registry holds, and one model built by name."""

import torch

import registry_core

print(f"registry-core {registry_core.__version__}\n")
print("Plugins:")
for plugin in registry_core.list_plugins():
    print(f"  {plugin.name:<16} {plugin.distribution} {plugin.version}  [{plugin.status}]")

print("\nModels:")
for name in registry_core.list_models():
    info = registry_core.model_info(name, flops=False)
    print(f"  {name:<22} {info['family']:<10} {info['params'] / 1e6:8.2f}M params  ({info['distribution']})")

model = registry_core.create("lenet5").eval()
print("\nlenet5:")
print(model)
x = torch.randn(4, *model.meta.input_size)
with torch.no_grad():
    logits = model(x)
print(f"forward: input {tuple(x.shape)} -> logits {tuple(logits.shape)}")
