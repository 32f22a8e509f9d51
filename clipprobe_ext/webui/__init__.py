"""ClipProbe inside the Stable Diffusion WebUI (AUTOMATIC1111 1.10, Forge).

``host`` is the only module that imports the WebUI's ``modules.*`` (and Forge's
``modules_forge``/``backend``), each inside the function that needs it; every other module
asks ``host``, so the package imports without a WebUI and the tests fake that one module
(``tests/webui_stubs/fake_host.py``).  Gradio is imported only inside the functions that
build components.  Nothing imports in a circle.

- ``host``: the WebUI (settings, state, lock, progress registry, devices, interrogator,
  checkpoints, samplers, infotexts, processing, callbacks, UI components).
- ``session``: the queue lock, the memory policy, the progress bookkeeping and ``run``,
  the one way a job runs with a CLIP (analysis, heatmaps, regeneration, audit, probe
  after generation, the API); ``analyze`` is the analysis through it.
- Which CLIP: ``model_choices`` (the models offered), ``model_source`` (choices,
  availability, the source of a run), ``clip_source`` (what a source is),
  ``interrogator_clip`` (the WebUI's Interrogate CLIP, A1111 and Forge), ``named_clip``
  (transformers / openai-clip by name, through the engine's loader).
- ``settings``: the "ClipProbe" section in Settings (from ``clipprobe_ext.options``).
- ``regenerate``: ``plan`` (pure: parameters and prompt to a txt2img request),
  ``checkpoint`` (the picture's checkpoint), ``run`` (generate and compare in a session).
- ``api``: every HTTP route (``/clipprobe/v1/models``, ``analyze``, ``regenerate``).
- ``tab`` (layout), ``tab_handlers`` (what its events do), ``heatmap_tab``,
  ``regenerate_tab``, ``audit_tab``, ``exports`` (JSON/CSV files), ``send_to`` ("Send to
  ClipProbe" buttons in other tabs), ``compat`` (gradio 3 / 4).  Images, prompts and
  grids are read by the engine's ``inputs``.
- ``always_visible``: "probe after generation" in txt2img/img2img.
- ``callbacks``: registers all of the above with the WebUI.
"""
