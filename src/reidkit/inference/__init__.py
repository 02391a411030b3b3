"""Running an embedder over images and datasets."""
