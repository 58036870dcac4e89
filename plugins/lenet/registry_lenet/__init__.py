"""LeNet-5 (LeCun et al., 1998) as a registry-core plugin."""
