"""ClipProbe inside the Stable Diffusion WebUI (AUTOMATIC1111 1.10, Forge).

Importing this package is cheap: it imports neither torch models, gradio nor any
``modules.*`` of the WebUI.  Each submodule imports the WebUI's ``modules`` only inside
its functions, so the same code runs in the WebUI, in Forge, and in tests that put
stand-in ``modules.*`` into ``sys.modules`` (``tests/webui/conftest.py``).

- ``compat``: version and fork differences (A1111 / Forge, gradio 3 / 4).
- ``model_source``: which CLIP to use, and ``run_analysis`` (the one entry point the tab
  and the API call).
- ``settings``: the "ClipProbe" section in Settings and its getters.
- ``api``: ``POST /clipprobe/v1/analyze`` and ``GET /clipprobe/v1/models``.
"""
