"""VGG (Simonyan & Zisserman, 2014) as a registry-core plugin."""
