"""Mirrors the part of Forge's modules/gradio_extensions.py (gradio 4) that the stand-ins need.

Forge's ``modules/ui_components.py`` imports this module first.  Under gradio 4 every
``Component`` subclass makes gradio write a ``.pyi`` file next to the file that defines
it (``gradio.component_meta.create_or_modify_pyi``); Forge skips classes marked
``webui_do_not_create_gradio_pyi_thank_you`` and turns ``gradio.component_meta.updateable``
off, exactly as below, so the stand-in ``ui_components`` leaves no ``.pyi`` in the repository.

Deliberately NOT mirrored: Forge's ``repair()`` of every component (``_js`` -> ``js``,
``source`` -> ``sources``, unknown constructor arguments dropped with a warning,
``Component.update = gr.update``) and its ``Component.__init__`` patch that fires the
component callbacks.  Those only make Forge forgiving; the tests run ClipProbe on plain
gradio 4 so that they prove it uses gradio 4's own API and needs none of that.

Under gradio 3 (AUTOMATIC1111 1.10, which has no such module) it does nothing.
"""

import gradio

GRADIO_4 = int(gradio.__version__.split(".", 1)[0]) >= 4

if GRADIO_4:
    import gradio.component_meta

    def gradio_component_meta_create_or_modify_pyi(component_class, class_name, events):
        if hasattr(component_class, "webui_do_not_create_gradio_pyi_thank_you"):
            return
        gradio_component_meta_create_or_modify_pyi_original(component_class, class_name, events)

    # Loaded afresh for every test: patch once (Forge's patches.patch refuses a second time).
    _current = gradio.component_meta.create_or_modify_pyi
    gradio_component_meta_create_or_modify_pyi_original = getattr(
        _current, "original_create_or_modify_pyi", _current
    )
    gradio_component_meta_create_or_modify_pyi.original_create_or_modify_pyi = (
        gradio_component_meta_create_or_modify_pyi_original
    )
    gradio.component_meta.create_or_modify_pyi = gradio_component_meta_create_or_modify_pyi

    # "this function is broken and does not seem to do anything useful" (Forge)
    gradio.component_meta.updateable = lambda x: x
