"""AlexNet (Krizhevsky et al., 2012) as a registry-core plugin."""
