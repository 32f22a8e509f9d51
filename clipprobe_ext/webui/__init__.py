"""ClipProbe inside the Stable Diffusion WebUI (AUTOMATIC1111 1.10, Forge).

Submodules import ClipProbe's own modules at the top; the WebUI's ``modules.*`` (and
gradio, in files that must import without it) only inside their functions, so the same
code runs in the WebUI, in Forge, and in tests that put stand-in ``modules.*`` into
``sys.modules`` (``tests/webui/conftest.py``).  Nothing imports in a circle.

- ``compat``: version and fork differences (A1111 / Forge, gradio 3 / 4).
- ``model_choices``: the models offered and which are on this machine.
- ``model_source``: loading the chosen CLIP (the interrogator's, or transformers) and
  ``run_analysis`` (the one entry point the tab, the API and the script call).
- ``settings``: the "ClipProbe" section in Settings (from ``clipprobe_ext.options``).
- ``tab`` (layout), ``tab_handlers`` (what its events do), ``exports`` (JSON/CSV files),
  ``progress_task`` (the WebUI's progress bar), ``send_to`` ("Send to ClipProbe" buttons
  in other tabs).  Images, prompts and grids are read by the engine's ``inputs``.
- ``always_visible``: "probe after generation" in txt2img/img2img.
- ``api``: ``POST /clipprobe/v1/analyze`` and ``GET /clipprobe/v1/models``.
- ``callbacks``: registers all of the above with the WebUI.
"""
