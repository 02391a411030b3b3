"""Data: dataset parsers, synthetic data."""
