"""Mirrors modules/sd_models.py of AUTOMATIC1111 v1.10.1: the checkpoint registry.

``CheckpointInfo`` takes its names and hashes as arguments instead of reading a file
(``hash`` is the old 8-character hash, ``sha256`` may be None until computed, as in
the WebUI); ``register()``, ``checkpoints_list``, ``checkpoint_aliases`` and
``get_closet_checkpoint_match`` behave as in 1.10.1.  ``model_data.sd_model`` is the
loaded model (None until a test loads one with ``load``).  Stand-in only: ``calls``
records ``("reload_model_weights", title)``.
"""

import re

checkpoints_list = {}
checkpoint_aliases = {}
checkpoint_alisases = checkpoint_aliases
calls = []  # stand-in only

re_strip_checksum = re.compile(r"\s*\[[^]]+]\s*$")


_MODELS_DIR = "/models/Stable-diffusion/"


def _checkpoint(name, old_hash, sha256=None):
    """Stand-in only: a CheckpointInfo whose hashes are known (the WebUI reads them from disk)."""
    info = CheckpointInfo(_MODELS_DIR + name)
    info._set_hashes(old_hash, sha256)
    return info


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.name = filename[len(_MODELS_DIR) :] if filename.startswith(_MODELS_DIR) else filename
        self._set_hashes(None, None)

    def _set_hashes(self, old_hash, sha256):
        name = self.name
        self.name = name
        self.name_for_extra = name.rsplit(".", 1)[0].rsplit("/", 1)[-1]
        self.model_name = name.rsplit(".", 1)[0].replace("/", "_").replace("\\", "_")
        self.hash = old_hash
        self.sha256 = sha256
        self.shorthash = sha256[0:10] if sha256 else None
        self.title = name if self.shorthash is None else f"{name} [{self.shorthash}]"
        self.short_title = (
            self.name_for_extra
            if self.shorthash is None
            else f"{self.name_for_extra} [{self.shorthash}]"
        )
        self.ids = [
            self.hash,
            self.model_name,
            self.title,
            name,
            self.name_for_extra,
            f"{name} [{self.hash}]",
        ]
        if self.shorthash:
            self.ids += [
                self.shorthash,
                self.sha256,
                f"{self.name} [{self.shorthash}]",
                f"{self.name_for_extra} [{self.shorthash}]",
            ]

    def register(self):
        checkpoints_list[self.title] = self
        for id_ in self.ids:
            checkpoint_aliases[id_] = self


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoint_aliases.get(search_string)
    if info is not None:
        return info
    found = sorted(
        [i for i in checkpoints_list.values() if search_string in i.title],
        key=lambda x: len(x.title),
    )
    if found:
        return found[0]
    without = re.sub(re_strip_checksum, "", search_string)
    found = sorted(
        [i for i in checkpoints_list.values() if without in i.title], key=lambda x: len(x.title)
    )
    return found[0] if found else None


class FakeSdModel:
    """What processing reads from a loaded model (stand-in only)."""

    def __init__(self, info):
        self.sd_checkpoint_info = info
        self.sd_model_hash = info.shorthash
        self.sd_model_checkpoint = info.filename
        self.is_sdxl = False


class SdModelData:
    def __init__(self):
        self.sd_model = None
        self.loaded_sd_models = []
        self.was_loaded_at_least_once = False

    def get_sd_model(self):
        return self.sd_model

    def set_sd_model(self, v, already_loaded=False):
        self.sd_model = v


model_data = SdModelData()


def load(info):
    """Stand-in only: make ``info`` the loaded checkpoint (``shared.sd_model`` too)."""
    from modules import shared

    model_data.sd_model = FakeSdModel(info)
    shared.sd_model = model_data.sd_model
    return model_data.sd_model


def reload_model_weights(sd_model=None, info=None, forced_reload=False):
    """Load the checkpoint ``opts.sd_model_checkpoint`` names, as 1.10.1 does."""
    from modules import shared

    wanted = get_closet_checkpoint_match(getattr(shared.opts, "sd_model_checkpoint", None))
    calls.append(("reload_model_weights", None if wanted is None else wanted.title))
    if wanted is not None and (
        model_data.sd_model is None or model_data.sd_model.sd_checkpoint_info is not wanted
    ):
        load(wanted)
    return model_data.sd_model


def apply_token_merging(sd_model, token_merging_ratio):
    pass
