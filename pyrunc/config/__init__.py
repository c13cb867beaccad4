"""config.json: loading and checking (load.py, validate.py), the schema, and `pyrunc spec` defaults."""

from pyrunc.config.load import load_bundle_config, load_process, validate_resources

__all__ = ["load_bundle_config", "load_process", "validate_resources"]
