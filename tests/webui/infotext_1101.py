"""Stand-ins for ``parse_generation_parameters`` and ``get_override_settings`` of
modules/infotext_utils.py (AUTOMATIC1111 v1.10.1), complete where regeneration needs it.

The shared stand-in ``modules.infotext_utils`` parses only the common layout; the
regeneration tests install these two functions on it (``install``).  Mirrored here: the
"WxH" split into "-1"/"-2" keys, the defaults 1.10.1 adds for missing keys (Clip skip 1,
Hires resize 0, "Use same ..." hires choices, RNG GPU, Schedule type Automatic, ...),
old hires-fix sizes ("First pass size"), the Version back-compat rules of
infotext_versions.py, and the override-settings mapping through ``OptionInfo.infotext``
with ``opts.cast_value``'s casting.  Not mirrored: styles extraction (tests use none).
"""

from __future__ import annotations

import json
import re

from packaging import version

re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
re_imagesize = re.compile(r"^(\d+)x(\d+)$")

V160 = version.parse("1.6.0")
V170_TSNR = version.parse("v1.7.0-225")
V180 = version.parse("1.8.0")

DEFAULTS = {
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    "Mask mode": "Inpaint masked",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": 32,
}
LATE_DEFAULTS = {
    "RNG": "GPU",
    "Schedule type": "Automatic",
    "Schedule max sigma": 0,
    "Schedule min sigma": 0,
    "Schedule rho": 0,
    "VAE Encoder": "Full",
    "VAE Decoder": "Full",
    "FP8 weight": "Disable",
}


def _parse_version(text):
    if text is None:
        return None
    m = re.match(r"([^-]+-[^-]+)-.*", text)
    if m:
        text = m.group(1)
    try:
        return version.parse(text)
    except Exception:
        return None


def parse_generation_parameters(x: str, skip_fields=None):
    res: dict = {}
    prompt, negative = "", ""
    done = False
    *lines, last = x.strip().split("\n")
    if len(re_param.findall(last)) < 3:
        lines.append(last)
        last = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done = True
            line = line[16:].strip()
        if done:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in re_param.findall(last):
        if v[0] == '"' and v[-1] == '"':
            v = json.loads(v)
        m = re_imagesize.match(v)
        if m is not None:
            res[f"{k}-1"], res[f"{k}-2"] = m.group(1), m.group(2)
        else:
            res[k] = v
    res["Prompt"], res["Negative prompt"] = prompt, negative
    res.setdefault("Clip skip", "1")
    if "Hires resize-1" not in res:
        res["Hires resize-1"] = 0
        res["Hires resize-2"] = 0
    for key, value in DEFAULTS.items():
        res.setdefault(key, value)
    first_w, first_h = res.get("First pass size-1"), res.get("First pass size-2")
    if first_w is not None and first_h is not None:
        width, height = int(res.get("Size-1", 512)), int(res.get("Size-2", 512))
        res["Size-1"], res["Size-2"] = int(first_w), int(first_h)
        res["Hires resize-1"], res["Hires resize-2"] = width, height
    for key, value in LATE_DEFAULTS.items():
        res.setdefault(key, value)
    if "Emphasis" not in res and re.search(r"[()\[\]]", prompt + negative):
        res["Emphasis"] = "Original"
    res.setdefault("Refiner switch by sampling steps", False)
    ver = _parse_version(res.get("Version"))
    if ver is not None:
        if ver < V160 and "[" in res.get("Prompt", ""):
            res["Old prompt editing timelines"] = True
        if ver < V160 and res.get("Sampler", "") in ("DDIM", "PLMS"):
            res["Pad conds v0"] = True
        if ver < V170_TSNR:
            res["Downcast alphas_cumprod"] = True
        if ver < V180 and res.get("Refiner"):
            res["Refiner switch by sampling steps"] = True
    for key in skip_fields or []:
        res.pop(key, None)
    return res


def cast_value(opts, key, value):
    if value is None:
        return None
    default = opts.data_labels[key].default
    if default is None:
        default = getattr(opts, key, None)
    if default is None:
        return None
    kind = type(default)
    if kind is bool and value == "False":
        return False
    return kind(value)


def get_override_settings(params, *, skip_fields=None):
    from modules import shared

    opts = shared.opts
    res = []
    mapping = [(info.infotext, k) for k, info in opts.data_labels.items() if info.infotext]
    for param_name, setting_name in mapping:
        if param_name in (skip_fields or {}):
            continue
        v = params.get(param_name, None)
        if v is None:
            continue
        if setting_name == "sd_model_checkpoint" and opts.disable_weights_auto_swap:
            continue
        v = cast_value(opts, setting_name, v)
        if v == getattr(opts, setting_name, None):
            continue
        res.append((param_name, setting_name, v))
    return res


#: (setting, default, infotext label) of A1111 1.10.1's shared_options.py used in tests
SETTINGS = (
    ("sd_model_checkpoint", None, "Model hash"),
    ("CLIP_stop_at_last_layers", 1, "Clip skip"),
    ("randn_source", "GPU", "RNG"),
    ("eta_noise_seed_delta", 0, "ENSD"),
    ("emphasis", "Original", "Emphasis"),
    ("sd_vae", "Automatic", "VAE"),
    ("sd_vae_encode_method", "Full", "VAE Encoder"),
    ("sd_vae_decode_method", "Full", "VAE Decoder"),
    ("sigma_min", 0.0, "Schedule min sigma"),
    ("sigma_max", 0.0, "Schedule max sigma"),
    ("rho", 0.0, "Schedule rho"),
    ("use_old_scheduling", False, "Old prompt editing timelines"),
    ("use_downcasted_alpha_bar", False, "Downcast alphas_cumprod"),
    ("refiner_switch_by_sample_steps", False, "Refiner switch by sampling steps"),
    ("pad_cond_uncond_v0", False, "Pad conds v0"),
    ("token_merging_ratio", 0.0, "Token merging ratio"),
    ("face_restoration", False, "Face restoration"),
    ("tiling", False, "Tiling"),
    ("disable_weights_auto_swap", True, None),
)


def install(webui, monkeypatch) -> None:
    """Put these functions and the settings above into the loaded stand-ins."""
    options = webui.options
    for key, default, label in SETTINGS:
        webui.shared.opts.add_option(key, options.OptionInfo(default, key, infotext=label))
    monkeypatch.setattr(
        webui.infotext_utils, "parse_generation_parameters", parse_generation_parameters
    )
    monkeypatch.setattr(
        webui.infotext_utils, "get_override_settings", get_override_settings, raising=False
    )
