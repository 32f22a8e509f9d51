"""A transformers CLIP saved in the openai ``clip`` format, and the check that it is the same.

The WebUI's Interrogate CLIP is an openai ``clip`` model, which ClipProbe reads through
another encoder (``openai-clip:/path/model.pt``) with another preprocessing (openai's
transform at the model's ``input_resolution``).  A zoo member in that format exercises
that path.  ``clip.load(path, jit=False)`` accepts a plain state dict: its
``build_model`` infers widths, layers, heads (width // 64), patch, resolution, context
length and vocabulary from the tensors, so the transformers model must have been trained
with heads = width // 64 and QuickGELU (transformers' CLIP default, openai's activation).

The file is a TorchScript archive, as openai's own checkpoints are: ``clip.load`` tries
``torch.jit.load`` first and, for a plain state dict, retries ``torch.load`` on the same
file object without rewinding it (``EOFError``; openai/CLIP issue 396), so a plain state
dict does not load.  With ``jit=False`` it rebuilds the model from the archive's state dict
through ``build_model``, which stores the linear layers in float16 (as the real
checkpoints are); on the CPU they come back as float32.  The converted model equals the
transformers one up to that rounding, which ``compare`` measures.
"""

from __future__ import annotations

from pathlib import Path

import torch

_LAYER = {  # transformers encoder layer -> openai residual block
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def _blocks(hf: dict, prefix: str, target: str, layers: int, out: dict) -> None:
    for i in range(layers):
        src, dst = f"{prefix}.encoder.layers.{i}", f"{target}.resblocks.{i}"
        for name in ("weight", "bias"):
            qkv = [hf[f"{src}.self_attn.{p}_proj.{name}"] for p in "qkv"]
            out[f"{dst}.attn.in_proj_{name}"] = torch.cat(qkv)
            for a, b in _LAYER.items():
                out[f"{dst}.{b}.{name}"] = hf[f"{src}.{a}.{name}"]


def openai_state_dict(model) -> dict[str, torch.Tensor]:
    """The state dict of an openai ``clip.model.CLIP`` holding ``model``'s weights."""
    config = model.config
    for tower in (config.vision_config, config.text_config):
        if tower.hidden_size // 64 != tower.num_attention_heads:
            raise ValueError(
                f"openai clip infers {tower.hidden_size // 64} heads from width "
                f"{tower.hidden_size}; this model has {tower.num_attention_heads}"
            )
        if tower.hidden_act != "quick_gelu":
            raise ValueError(f"openai clip uses QuickGELU, this model {tower.hidden_act}")
    hf = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    v, t = "vision_model", "text_model"
    out = {
        "visual.class_embedding": hf[f"{v}.embeddings.class_embedding"],
        "visual.positional_embedding": hf[f"{v}.embeddings.position_embedding.weight"],
        "visual.conv1.weight": hf[f"{v}.embeddings.patch_embedding.weight"],
        "visual.ln_pre.weight": hf[f"{v}.pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf[f"{v}.pre_layrnorm.bias"],
        "visual.ln_post.weight": hf[f"{v}.post_layernorm.weight"],
        "visual.ln_post.bias": hf[f"{v}.post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].T.contiguous(),
        "token_embedding.weight": hf[f"{t}.embeddings.token_embedding.weight"],
        "positional_embedding": hf[f"{t}.embeddings.position_embedding.weight"],
        "ln_final.weight": hf[f"{t}.final_layer_norm.weight"],
        "ln_final.bias": hf[f"{t}.final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].T.contiguous(),
        "logit_scale": hf["logit_scale"],
    }
    _blocks(hf, v, "visual.transformer", config.vision_config.num_hidden_layers, out)
    _blocks(hf, t, "transformer", config.text_config.num_hidden_layers, out)
    return out


def save_openai(folder: Path, path: Path) -> Path:
    """Convert the transformers CLIP in ``folder`` into an openai clip archive ``path``."""
    import warnings

    from clip.model import build_model
    from transformers import CLIPModel

    model = build_model(openai_state_dict(CLIPModel.from_pretrained(folder))).float().eval()
    side = model.visual.input_resolution
    example = (
        torch.zeros(1, 3, side, side),
        torch.zeros(1, model.context_length, dtype=torch.long),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's own warnings
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(part))
    part.rename(path)
    return path


def compare(folder: Path, path: Path, images, texts: list[str]) -> dict:
    """The two files through ClipProbe's own encoders: the transformers folder and
    ``openai-clip:path``.  Cosines of each image's and text's two embeddings."""
    from clipprobe_ext.encoders import load_encoder

    hf = load_encoder(str(folder), device="cpu")
    oa = load_encoder(f"openai-clip:{path}", device="cpu")
    out = {}
    for kind, encode in (
        ("images", lambda e: e.encode_images(images)),
        ("texts", lambda e: e.encode_texts(texts)[0]),
    ):
        a, b = encode(hf), encode(oa)
        cos = (a * b).sum(-1)
        out[kind] = {
            "count": len(cos),
            "min_cosine": float(cos.min()),
            "max_abs_difference": float((a - b).abs().max()),
        }
    out["logit_scale"] = {"hf": hf.logit_scale, "openai": oa.logit_scale}
    return out
