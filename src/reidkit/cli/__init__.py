"""The ``reid`` command."""
