"""Mirrors modules/shared.py of AUTOMATIC1111 v1.10.1: opts, cmd_opts, state, interrogator.

``cmd_opts`` holds the defaults of the command-line flags ClipProbe reads (see
modules/cmd_args.py).  ``interrogator`` starts as None; tests install an
``interrogate.InterrogateModels`` (fixture ``interrogator``).
"""

import argparse

from modules import options, shared_state

cmd_opts = argparse.Namespace(
    api=False,
    api_auth=None,
    lowvram=False,
    medvram=False,
    medvram_sdxl=False,
    no_half=False,
    clip_models_path=None,
    use_cpu=[],
    skip_install=False,
    freeze_settings=False,
    hide_ui_dir_config=False,
    ui_settings_file="config.json",
)

OptionInfo = options.OptionInfo
OptionHTML = options.OptionInfo
options_section = options.options_section

options_templates = options_section(
    ("interrogate", "Interrogate"),
    {
        "interrogate_keep_models_in_memory": OptionInfo(False, "Keep models in VRAM"),
        "interrogate_return_ranks": OptionInfo(False, "Include ranks of model tags matches"),
        "interrogate_clip_dict_limit": OptionInfo(1500, "CLIP: maximum number of lines"),
        "interrogate_clip_skip_categories": OptionInfo([], "CLIP: skip inquire categories"),
    },
)
options_templates.update(
    options_section(
        ("ui", "User interface", "ui"),
        {
            "samples_format": OptionInfo("png", "File format for images"),
            "return_grid": OptionInfo(True, "Show grid in gallery"),
            "memmon_poll_rate": OptionInfo(0, "VRAM usage polls per second"),
            "profiling_enable": OptionInfo(False, "Enable profiling"),
        },
    )
)

opts = options.Options(options_templates, set())
state = shared_state.State()
interrogator = None
demo = None
sd_model = None
device = None
settings_components = {}
tab_names = []
parallel_processing_allowed = True
mem_mon = None
