"""PT-DiT reproducibility suite: the model zoo, objectives, samplers and the `ptdit` CLI."""

from ptdit.registry import create_model, get_spec, list_models

__all__ = ["create_model", "get_spec", "list_models"]
