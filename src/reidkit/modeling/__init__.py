"""Models that turn an image into a feature vector."""
