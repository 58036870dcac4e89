"""GoogLeNet (Szegedy et al., 2014) and Inception v3 (Szegedy et al., 2015) as a registry-core plugin."""
