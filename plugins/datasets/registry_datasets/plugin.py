"""Hook implementations of the datasets plugin."""

from registry_core import hookimpl

from .datasets import CIFAR10, MNIST, Digits, Fake, Folder


@hookimpl
def register_datasets(register):
    register("digits", Digits())
    register("folder", Folder())
    register("mnist", MNIST())
    register("cifar10", CIFAR10())
    register("fake", Fake())
