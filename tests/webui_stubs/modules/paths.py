"""Mirrors modules/paths.py of AUTOMATIC1111 v1.10.1 (script_path, models_path, data_path)."""

import os
import tempfile

script_path = os.path.join(tempfile.gettempdir(), "clipprobe-webui-stub")
data_path = script_path
models_path = os.path.join(script_path, "models")
paths = {}
