"""Mirrors modules/torch_utils.py of AUTOMATIC1111 v1.10.1 (get_param)."""


def get_param(model):
    if hasattr(model, "model") and hasattr(model.model, "parameters"):
        model = model.model
    for param in model.parameters():
        return param
    raise ValueError(f"No parameters found in model {model!r}")
