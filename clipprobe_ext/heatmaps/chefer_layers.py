"""Chefer et al.'s rule over the last blocks of the tower, by autograd.

``R = I``; for each block from ``start`` on: ``R += mean_h(clamp(dS/dA * A, 0)) @ R``;
relevance ``R[cls, patches]``.  It needs every phrase's gradient with respect to whole
attention matrices, so the blocks from ``start`` on are run once more with autograd (in
float32 copies of their weights) and differentiated once for all P phrases with a
batched backward (``is_grads_batched``).  Only the class token leaves the last block, so
the last block computes only the class token's row: its backward is a fraction of a
block.  Cost beyond the kept forward (whose block inputs it starts from): the blocks
from ``start`` on, once forward, P times backward.  ``relevance.chefer`` is the last-block case (``start`` = last), which
needs no block backward at all; the tests check it against this module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from clipprobe_ext.heatmaps.tower import TowerPass, ViTTower, _split_heads


def _float_call(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module`` applied with float32 copies of its weights (plain tensors: no inference
    tensors, no fp16 overflow in the backward)."""
    params = {n: p.detach().float().clone() for n, p in module.named_parameters()}
    return lambda x: torch.func.functional_call(module, params, (x,))


def _float_block_step(
    block, x: torch.Tensor, cls_only: bool, first: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual stream after the block, attention probabilities) in float32; with
    ``cls_only`` only the class token's row is computed (all the output needs); in the
    ``first`` block the graph starts at the attention probabilities."""
    ln_1, ln_2, mlp, out_proj = (
        _float_call(m) for m in (block.ln_1, block.ln_2, block.mlp, block.out_proj)
    )
    weight = block.qkv_weight.detach().float().clone()
    bias = None if block.qkv_bias is None else block.qkv_bias.detach().float().clone()
    q, k, v = nn.functional.linear(ln_1(x), weight, bias).chunk(3, dim=-1)
    if cls_only:
        q, x = q[:, :1], x[:, :1]
    q, k, v = (_split_heads(t, block.heads) for t in (q, k, v))
    probs = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1)
    if first:
        probs = probs.detach().requires_grad_(True)
    out = (probs @ v).transpose(1, 2).reshape(x.shape)
    y = x + out_proj(out)
    return y + mlp(ln_2(y)), probs


def chefer_from(
    tower: ViTTower, kept: TowerPass, text: torch.Tensor, start: int = 0
) -> torch.Tensor:
    """Relevance [P, N - 1] of every patch for each unit text embedding [P, E]."""
    count, blocks = text.shape[0], tower.blocks
    start = max(0, min(start, len(blocks) - 1))
    text = text.to(tower.device, torch.float32)
    with torch.inference_mode(False), torch.enable_grad():
        x = kept.block_inputs[start].detach().float().clone()[None]
        probs = []
        for i, block in enumerate(blocks[start:], start=start):
            x, p = _float_block_step(block, x, i == len(blocks) - 1, i == start)
            probs.append(p)
        ln_post = _float_call(tower.ln_post)
        features = ln_post(x[:, 0]) @ tower.proj.detach().float().clone()
        unit = features / features.norm(dim=-1, keepdim=True)
        scores = (unit @ text.T)[0]  # [P]
        grads = torch.autograd.grad(
            scores, probs, torch.eye(count, device=scores.device), is_grads_batched=True
        )
    n = probs[0].shape[-1]
    relevance = torch.eye(n, device=text.device).expand(count, n, n)
    for attention, grad in zip(probs, grads):
        cam = (grad[:, 0] * attention[0].detach()).clamp(min=0).mean(1)  # [P, rows, N]
        if cam.shape[1] == 1:  # the last block: only the class row exists
            cam = torch.cat([cam, cam.new_zeros(count, n - 1, n)], dim=1)
        relevance = relevance + cam @ relevance
    return relevance[:, 0, 1:]
