"""One pass through a CLIP ViT image tower that keeps what the relevance methods read.

The two backends build their towers differently (transformers' ``CLIPAttention`` versus
``nn.MultiheadAttention`` in openai ``clip``, which never hands out its attention
probabilities), so instead of hooks this module reads each block's weights through a
small adapter and runs the attention itself: the same arithmetic as the model (checked
against ``encode_image`` by the tests), with the attention probabilities, the last
block's queries, keys and values and its class-token attention output kept.  The
encoders stay untouched; the adapters only read ``encoder.model``'s blocks, and the
pictures go through the encoder's own ``pixels``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch import nn

from clipprobe_ext.errors import ModelError


@dataclass
class Block:
    """What one transformer block of either backend is made of."""

    ln_1: nn.Module
    ln_2: nn.Module
    mlp: nn.Module
    qkv_weight: torch.Tensor  # [3 * width, width]: query, key and value rows
    qkv_bias: torch.Tensor | None
    out_proj: nn.Linear
    heads: int


@dataclass
class ViTTower:
    """An image tower seen as embed -> blocks -> head, plus its own preprocessing."""

    pixels: Callable[[Image.Image], torch.Tensor]  # one RGB picture -> [3, S, S]
    embed: Callable[[torch.Tensor], torch.Tensor]  # pixels [B, 3, S, S] -> tokens [B, N, D]
    blocks: list[Block]
    ln_post: nn.Module
    proj: torch.Tensor  # [D, E]: final norm's output -> image features
    image_size: int
    device: torch.device
    dtype: torch.dtype


@dataclass
class TowerPass:
    """The activations one forward keeps (all float32 except ``features``' source dtype).

    ``attentions`` are the head-averaged attention probabilities of every block (for
    rollout); ``last_*`` belong to the last block: attention probabilities of the class
    token row per head, queries/keys/values per head, the class token's attention output
    (heads concatenated, before ``out_proj``) and the residual stream entering the block.
    """

    features: torch.Tensor  # [E] image features (not normalised), float32
    attentions: list[torch.Tensor]  # per block [N, N]
    last_cls_attention: torch.Tensor  # [H, N]
    last_q: torch.Tensor  # [H, N, d] (before the 1/sqrt(d) scale)
    last_k: torch.Tensor  # [H, N, d]
    last_v: torch.Tensor  # [H, N, d]
    last_cls_output: torch.Tensor  # [D] in the model's dtype
    last_cls_residual: torch.Tensor  # [D] in the model's dtype
    grid: int  # patches per side
    block_inputs: list[torch.Tensor]  # per block, the residual stream entering it [N, D]


def tower_of(encoder: Any) -> ViTTower:
    """The adapter for an encoder's model; a tower that is no ViT is a ``ModelError``."""
    model = encoder.model
    if hasattr(model, "vision_model") and hasattr(model, "visual_projection"):
        return _hf_tower(encoder)
    visual = getattr(model, "visual", None)
    if visual is not None and hasattr(visual, "transformer") and hasattr(visual, "conv1"):
        return _openai_tower(encoder)
    raise ModelError(
        "Heatmaps need a CLIP with a vision-transformer image tower (ViT); this model's "
        f"image tower ({type(visual or model).__name__}) is not one."
    )


def _hf_tower(encoder: Any) -> ViTTower:
    model = encoder.model
    vision = model.vision_model
    param = vision.embeddings.patch_embedding.weight
    blocks = []
    for layer in vision.encoder.layers:
        attn = layer.self_attn
        weight = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
        bias = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
        blocks.append(
            Block(
                layer.layer_norm1,
                layer.layer_norm2,
                layer.mlp,
                weight,
                bias,
                attn.out_proj,
                attn.num_heads,
            )
        )

    def pixels(image: Image.Image) -> torch.Tensor:
        return encoder.pixels([image])[0]

    def embed(x: torch.Tensor) -> torch.Tensor:
        return vision.pre_layrnorm(vision.embeddings(x))

    return ViTTower(
        pixels,
        embed,
        blocks,
        vision.post_layernorm,
        model.visual_projection.weight.t(),
        int(vision.config.image_size),
        param.device,
        param.dtype,
    )


def _openai_tower(encoder: Any) -> ViTTower:
    visual = encoder.model.visual
    param = visual.conv1.weight
    blocks = []
    for block in visual.transformer.resblocks:
        attn = block.attn
        if getattr(block, "attn_mask", None) is not None or attn.in_proj_weight is None:
            raise ModelError(
                "Heatmaps: this openai CLIP image tower has an unusual attention layout."
            )
        blocks.append(
            Block(
                block.ln_1,
                block.ln_2,
                block.mlp,
                attn.in_proj_weight,
                attn.in_proj_bias,
                attn.out_proj,
                attn.num_heads,
            )
        )

    def pixels(image: Image.Image) -> torch.Tensor:
        return encoder.pixels([image])[0]

    def embed(x: torch.Tensor) -> torch.Tensor:
        x = visual.conv1(x).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        return visual.ln_pre(x)

    return ViTTower(
        pixels,
        embed,
        blocks,
        visual.ln_post,
        visual.proj,
        int(visual.input_resolution),
        param.device,
        param.dtype,
    )


def _linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    return nn.functional.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, D] -> [B, H, N, D / H]."""
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


@dataclass
class BlockStep:
    """One block's output and the attention internals the methods read."""

    x: torch.Tensor  # [B, N, D] the residual stream after the block
    probs: torch.Tensor  # [B, H, N, N]
    q: torch.Tensor  # [B, H, N, d] (before the 1/sqrt(d) scale)
    k: torch.Tensor
    v: torch.Tensor
    out: torch.Tensor  # [B, N, D] attention output, heads concatenated, before out_proj


def block_step(block: Block, x: torch.Tensor) -> BlockStep:
    """One transformer block, the attention spelled out (as both backends compute it)."""
    h = block.ln_1(x)
    q, k, v = _linear(h, block.qkv_weight, block.qkv_bias).chunk(3, dim=-1)
    q, k, v = (_split_heads(t, block.heads) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    probs = torch.softmax((q * scale) @ k.transpose(-1, -2), dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(x.shape)
    y = x + block.out_proj(out)
    y = y + block.mlp(block.ln_2(y))
    return BlockStep(y, probs, q, k, v, out)


def embed(tower: ViTTower, pixels: torch.Tensor) -> torch.Tensor:
    """Tokens [1, N, D] of one picture's pixels [3, S, S], in the model's dtype and device."""
    return tower.embed(pixels.unsqueeze(0).to(tower.device, tower.dtype))


def features_of(tower: ViTTower, x: torch.Tensor) -> torch.Tensor:
    """Image features [B, E] from the last residual stream [B, N, D]."""
    return tower.ln_post(x[:, 0]) @ tower.proj.to(x.dtype)


def run_tower(tower: ViTTower, pixels: torch.Tensor) -> TowerPass:
    """One forward of one picture ([3, S, S]) without autograd, activations kept.

    Computed in the model's dtype on its device like ``encode_image``; what is kept is
    copied to float32 for the relevance arithmetic.
    """
    with torch.no_grad():
        x = embed(tower, pixels)
        attentions, inputs = [], []
        for block in tower.blocks:
            inputs.append(x[0])
            step = block_step(block, x)
            attentions.append(step.probs[0].float().mean(0))
            last, residual, x = step, x, step.x
        features = features_of(tower, x)[0].float()
    grid = int(round((x.shape[1] - 1) ** 0.5))
    return TowerPass(
        features,
        attentions,
        last.probs[0, :, 0].float(),
        last.q[0].float(),
        last.k[0].float(),
        last.v[0].float(),
        last.out[0, 0].clone(),
        residual[0, 0].clone(),
        grid,
        inputs,
    )


def last_block_head(tower: ViTTower) -> Callable[[torch.Tensor], torch.Tensor]:
    """Float32 function: class-token attention output [P, D] -> image features [P, E].

    The part of the tower downstream of the last attention for the class token
    (``out_proj``, residual, MLP, final norm, projection), on float32 copies of those
    weights: gradients for fp16/bf16 models are computed without overflow or underflow.
    The copies are plain tensors, so this also works on weights made under inference mode.
    """
    block = tower.blocks[-1]

    def copy(module: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().float().clone() for n, p in module.named_parameters()}

    modules = (block.out_proj, block.ln_2, block.mlp, tower.ln_post)
    out_proj, ln_2, mlp, ln_post = (copy(m) for m in modules)
    proj = tower.proj.detach().float().clone()
    call = torch.func.functional_call

    def head(cls_output: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = residual.float() + call(block.out_proj, out_proj, (cls_output,))
        x = x + call(block.mlp, mlp, (call(block.ln_2, ln_2, (x,)),))
        return call(tower.ln_post, ln_post, (x,)) @ proj

    return head
