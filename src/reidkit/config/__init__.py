"""Configuration: fast-reid's keys and file format."""

from .config import CfgNode, ConfigError, check_values, get_cfg, load_config

__all__ = ["CfgNode", "ConfigError", "check_values", "get_cfg", "load_config"]
