"""Mirrors modules/infotext_utils.py of AUTOMATIC1111 v1.10.1 (paste buttons, infotext parsing).

Registration functions record what they get (``registered_param_bindings``,
``paste_fields``); ``create_buttons`` builds real gradio buttons like 1.10.
``parse_generation_parameters`` handles the common "prompt / Negative prompt: / k: v, ..."
layout (enough for tests; no hires-fix or override-settings handling).
"""

import re

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)


class ParamBinding:
    def __init__(
        self,
        paste_button,
        tabname,
        source_text_component=None,
        source_image_component=None,
        source_tabname=None,
        override_settings_component=None,
        paste_field_names=None,
    ):
        self.paste_button = paste_button
        self.tabname = tabname
        self.source_text_component = source_text_component
        self.source_image_component = source_image_component
        self.source_tabname = source_tabname
        self.override_settings_component = override_settings_component
        self.paste_field_names = paste_field_names or []


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


paste_fields = {}
registered_param_bindings = []


def reset():
    paste_fields.clear()
    registered_param_bindings.clear()


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    import json

    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    import json

    try:
        return json.loads(text)
    except Exception:
        return text


def add_paste_fields(tabname, init_img, fields, override_settings_component=None):
    if fields:
        fields = [f if isinstance(f, PasteField) else PasteField(*f) for f in fields]
    paste_fields[tabname] = {
        "init_img": init_img,
        "fields": fields,
        "override_settings_component": override_settings_component,
    }


def create_buttons(tabs_list):
    import gradio as gr

    return {tab: gr.Button(f"Send to {tab}", elem_id=f"{tab}_tab") for tab in tabs_list}


def bind_buttons(buttons, send_image, send_generate_info):
    """old function for backwards compatibility; do not use this, use register_paste_params_button"""
    for tabname, button in buttons.items():
        source_tabname = send_generate_info if isinstance(send_generate_info, str) else None
        source_text_component = None if source_tabname is not None else send_generate_info
        register_paste_params_button(
            ParamBinding(
                paste_button=button,
                tabname=tabname,
                source_text_component=source_text_component,
                source_image_component=send_image,
                source_tabname=source_tabname,
            )
        )


def register_paste_params_button(binding):
    registered_param_bindings.append(binding)


def connect_paste_params_buttons():
    pass


def parse_generation_parameters(x, skip_fields=None):
    res = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in re_param.findall(lastline):
        res[k] = unquote(v)
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    for key in skip_fields or []:
        res.pop(key, None)
    return res
