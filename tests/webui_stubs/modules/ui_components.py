"""Mirrors modules/ui_components.py of the WebUI that goes with the installed gradio.

gradio 3 (3.41): AUTOMATIC1111 v1.10.1's file.  gradio 4: SD WebUI Forge's file (Forge pins
gradio 4.40), whose classes differ: the gradio base class comes first (so ``ToolButton``
is no form component there), ``ToolButton`` takes ``value`` first, ``gr.Dropdown`` gets
``FormComponent.get_expected_parent``, and ``InputAccordion`` is a function returning an
``InputAccordionImpl``.  As in the 1.10 stand-in, the accordion's JS ``change`` event is left out.
"""

import gradio as gr

from modules import gradio_extensions

if gradio_extensions.GRADIO_4:
    from functools import wraps

    class FormComponent:
        webui_do_not_create_gradio_pyi_thank_you = True

        def get_expected_parent(self):
            return gr.components.Form

    gr.Dropdown.get_expected_parent = FormComponent.get_expected_parent

    class ToolButton(gr.Button, FormComponent):
        """Small button with single emoji as text, fits inside gradio forms"""

        @wraps(gr.Button.__init__)
        def __init__(self, value="", *args, elem_classes=None, **kwargs):
            elem_classes = elem_classes or []
            super().__init__(*args, elem_classes=["tool", *elem_classes], value=value, **kwargs)

        def get_block_name(self):
            return "button"

    class FormRow(gr.Row, FormComponent):
        def get_block_name(self):
            return "row"

    class FormColumn(gr.Column, FormComponent):
        def get_block_name(self):
            return "column"

    class FormGroup(gr.Group, FormComponent):
        def get_block_name(self):
            return "group"

    class FormHTML(gr.HTML, FormComponent):
        def get_block_name(self):
            return "html"

    class DropdownMulti(gr.Dropdown, FormComponent):
        @wraps(gr.Dropdown.__init__)
        def __init__(self, **kwargs):
            kwargs["multiselect"] = True
            super().__init__(**kwargs)

        def get_block_name(self):
            return "dropdown"

    class InputAccordionImpl(gr.Checkbox):
        """A gr.Accordion usable as an input: a hidden checkbox that follows the accordion."""

        webui_do_not_create_gradio_pyi_thank_you = True

        global_index = 0

        @wraps(gr.Checkbox.__init__)
        def __init__(self, value=None, setup=False, **kwargs):
            if not setup:
                super().__init__(value=value, **kwargs)
                return
            self.accordion_id = kwargs.get("elem_id")
            if self.accordion_id is None:
                self.accordion_id = f"input-accordion-{InputAccordionImpl.global_index}"
                InputAccordionImpl.global_index += 1
            super().__init__(
                value=value,
                **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False},
            )
            self.accordion = gr.Accordion(
                **{
                    **kwargs,
                    "elem_id": self.accordion_id,
                    "label": kwargs.get("label", "Accordion"),
                    "elem_classes": ["input-accordion"],
                    "open": value,
                }
            )

        def extra(self):
            return gr.Column(
                elem_id=self.accordion_id + "-extra",
                elem_classes="input-accordion-extra",
                min_width=0,
            )

        def __enter__(self):
            self.accordion.__enter__()
            return self

        def __exit__(self, exc_type, exc_val, exc_tb):
            self.accordion.__exit__(exc_type, exc_val, exc_tb)

        def get_block_name(self):
            return "checkbox"

    def InputAccordion(value=None, **kwargs):
        return InputAccordionImpl(value=value, setup=True, **kwargs)


else:  # gradio 3: AUTOMATIC1111 v1.10.1

    class FormComponent:
        def get_expected_parent(self):
            return gr.components.Form

    class ToolButton(FormComponent, gr.Button):
        """Small button with single emoji as text, fits inside gradio forms"""

        def __init__(self, *args, **kwargs):
            classes = kwargs.pop("elem_classes", [])
            super().__init__(*args, elem_classes=["tool", *classes], **kwargs)

        def get_block_name(self):
            return "button"

    class FormRow(FormComponent, gr.Row):
        def get_block_name(self):
            return "row"

    class FormColumn(FormComponent, gr.Column):
        def get_block_name(self):
            return "column"

    class FormGroup(FormComponent, gr.Group):
        def get_block_name(self):
            return "group"

    class FormHTML(FormComponent, gr.HTML):
        def get_block_name(self):
            return "html"

    class DropdownMulti(FormComponent, gr.Dropdown):
        def __init__(self, **kwargs):
            super().__init__(multiselect=True, **kwargs)

        def get_block_name(self):
            return "dropdown"

    class InputAccordion(gr.Checkbox):
        """A gr.Accordion usable as an input: a hidden checkbox that follows the accordion."""

        global_index = 0

        def __init__(self, value, **kwargs):
            self.accordion_id = kwargs.get("elem_id")
            if self.accordion_id is None:
                self.accordion_id = f"input-accordion-{InputAccordion.global_index}"
                InputAccordion.global_index += 1
            super().__init__(
                value, **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False}
            )
            self.accordion = gr.Accordion(
                **{
                    **kwargs,
                    "elem_id": self.accordion_id,
                    "label": kwargs.get("label", "Accordion"),
                    "elem_classes": ["input-accordion"],
                    "open": value,
                }
            )

        def extra(self):
            return gr.Column(
                elem_id=self.accordion_id + "-extra",
                elem_classes="input-accordion-extra",
                min_width=0,
            )

        def __enter__(self):
            self.accordion.__enter__()
            return self

        def __exit__(self, exc_type, exc_val, exc_tb):
            self.accordion.__exit__(exc_type, exc_val, exc_tb)

        def get_block_name(self):
            return "checkbox"
