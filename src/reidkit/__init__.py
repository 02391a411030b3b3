"""reidkit: object re-identification toolbox, pipeline and service."""

__version__ = "0.1.0"
