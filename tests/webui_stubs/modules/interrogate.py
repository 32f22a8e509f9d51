"""Mirrors modules/interrogate.py of AUTOMATIC1111 v1.10.1 (InterrogateModels' model handling).

The CLIP/BLIP loading, half precision, device moves and ``send_*_to_ram`` follow 1.10
line by line; ``calls`` records which methods ran (stand-in only).  ``load_clip_model``
calls ``clip.load`` as the real one does, which needs the internet: tests replace it
(fixture ``interrogator``); ``load_blip_model`` raises (BLIP is never available here).
"""

import torch

from modules import devices, shared, torch_utils

blip_image_eval_size = 384
clip_model_name = "ViT-L/14"


class InterrogateModels:
    blip_model = None
    clip_model = None
    clip_preprocess = None
    dtype = None
    running_on_cpu = None

    def __init__(self, content_dir):
        self.loaded_categories = None
        self.skip_categories = []
        self.content_dir = content_dir
        self.running_on_cpu = devices.device_interrogate == torch.device("cpu")
        self.calls = []

    def categories(self):
        return []

    def load_blip_model(self):
        self.calls.append("load_blip_model")
        raise RuntimeError("BLIP is not available in the test stand-in")

    def load_clip_model(self):
        self.calls.append("load_clip_model")
        import clip

        if self.running_on_cpu:
            model, preprocess = clip.load(
                clip_model_name, device="cpu", download_root=shared.cmd_opts.clip_models_path
            )
        else:
            model, preprocess = clip.load(
                clip_model_name, download_root=shared.cmd_opts.clip_models_path
            )
        model.eval()
        model = model.to(devices.device_interrogate)
        return model, preprocess

    def load(self):
        self.calls.append("load")
        if self.blip_model is None:
            self.blip_model = self.load_blip_model()
            if not shared.cmd_opts.no_half and not self.running_on_cpu:
                self.blip_model = self.blip_model.half()
        self.blip_model = self.blip_model.to(devices.device_interrogate)
        if self.clip_model is None:
            self.clip_model, self.clip_preprocess = self.load_clip_model()
            if not shared.cmd_opts.no_half and not self.running_on_cpu:
                self.clip_model = self.clip_model.half()
        self.clip_model = self.clip_model.to(devices.device_interrogate)
        self.dtype = torch_utils.get_param(self.clip_model).dtype

    def send_clip_to_ram(self):
        self.calls.append("send_clip_to_ram")
        if not shared.opts.interrogate_keep_models_in_memory:  # noqa: SIM102 (as in 1.10)
            if self.clip_model is not None:
                self.clip_model = self.clip_model.to(devices.cpu)

    def send_blip_to_ram(self):
        self.calls.append("send_blip_to_ram")
        if not shared.opts.interrogate_keep_models_in_memory:  # noqa: SIM102 (as in 1.10)
            if self.blip_model is not None:
                self.blip_model = self.blip_model.to(devices.cpu)

    def unload(self):
        self.send_clip_to_ram()
        self.send_blip_to_ram()
        devices.torch_gc()

    def interrogate(self, pil_image):
        self.calls.append("interrogate")
        shared.state.begin(job="interrogate")
        try:
            self.load()
            return "a caption"
        finally:
            self.unload()
            shared.state.end()
