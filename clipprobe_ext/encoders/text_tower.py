"""CLIP's text tower run with shared prefixes: the reason prompt variants are cheap.

CLIP's text transformer is causal and pools at the end token, so every position sees
only the tokens before it.  Two chunks that start with the same tokens therefore have
the same keys and values for those tokens in every layer.  Prompt variants (the prompt
without one phrase) share everything up to the removed phrase with the prompt itself:
``TextTower`` keeps the keys and values of recently encoded chunks and computes only
the tokens after the longest shared prefix.  Leave-one-out and pruning then cost about
half the tokens, with the same result up to float rounding (checked in the tests
against the library's own forward pass).

The same loop serves a transformers ``CLIPModel`` and an openai/open_clip ``CLIP``:
each is described by a small adapter (``hf_tower``, ``openai_tower``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Seq = tuple[int, ...]
Tensor = torch.Tensor


@dataclass(frozen=True)
class Layer:
    ln1: Callable[[Tensor], Tensor]
    qkv: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]
    out: Callable[[Tensor], Tensor]
    ln2: Callable[[Tensor], Tensor]
    mlp: Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Tower:
    token_embedding: Callable[[Tensor], Tensor]
    positions: Tensor  # [context, width]
    layers: list[Layer]
    heads: int
    final: Callable[[Tensor], Tensor]  # final layer norm + projection of pooled states
    dtype: torch.dtype


def hf_tower(model: Any) -> Tower:
    """Adapter for a transformers ``CLIPModel``."""
    text = model.text_model

    def layer(block: Any) -> Layer:
        attn = block.self_attn
        return Layer(
            ln1=block.layer_norm1,
            qkv=lambda h, a=attn: (a.q_proj(h), a.k_proj(h), a.v_proj(h)),
            out=attn.out_proj,
            ln2=block.layer_norm2,
            mlp=block.mlp,
        )

    return Tower(
        token_embedding=text.embeddings.token_embedding,
        positions=text.embeddings.position_embedding.weight,
        layers=[layer(b) for b in text.encoder.layers],
        heads=text.encoder.layers[0].self_attn.num_heads,
        final=lambda x: model.text_projection(text.final_layer_norm(x)),
        dtype=text.embeddings.token_embedding.weight.dtype,
    )


def openai_tower(model: Any) -> Tower | None:
    """Adapter for an openai ``clip.model.CLIP`` (and open_clip's, which has the same
    layout); ``None`` for an architecture it does not recognise."""
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    if blocks is None or not all(_plain_block(b) for b in blocks):
        return None
    # The blocks' dtype, not the token table's: ``clip.model.convert_weights`` (what
    # ``clip.load`` does on a GPU) makes the linears fp16 and leaves ``token_embedding``
    # fp32; ``encode_text`` casts the embedded tokens to the model's dtype the same way.
    dtype = blocks[0].attn.in_proj_weight.dtype if len(blocks) else torch.float32

    def layer(block: Any) -> Layer:
        attn = block.attn
        return Layer(
            ln1=block.ln_1,
            qkv=lambda h, a=attn: F.linear(h, a.in_proj_weight, a.in_proj_bias).chunk(3, dim=-1),
            out=attn.out_proj,
            ln2=block.ln_2,
            mlp=block.mlp,
        )

    return Tower(
        token_embedding=model.token_embedding,
        positions=model.positional_embedding,
        layers=[layer(b) for b in blocks],
        heads=blocks[0].attn.num_heads,
        final=lambda x: model.ln_final(x).type(dtype) @ model.text_projection,
        dtype=dtype,
    )


def _plain_block(block: Any) -> bool:
    """A pre-norm block with standard attention and no layer scale (open_clip can add
    ``ls_1``/``ls_2`` scales, which this loop does not apply)."""
    identity = torch.nn.Identity
    return (
        isinstance(getattr(block, "attn", None), torch.nn.MultiheadAttention)
        and isinstance(getattr(block, "ls_1", identity()), identity)
        and isinstance(getattr(block, "ls_2", identity()), identity)
    )


@dataclass(frozen=True)
class _Stored:
    """Where a sequence's keys and values lie in the batch tensors that computed them:
    its first ``prefix`` positions at ``[row, :prefix]``, the rest from ``[row, offset:]``.
    Kept as views, so storing a batch costs no copies."""

    layers: list[tuple[Tensor, Tensor]]
    row: int
    prefix: int
    offset: int

    def leading(self, layer: int, n: int) -> tuple[Tensor, Tensor]:
        """Keys and values of the first ``n`` positions in one layer."""
        keys, values = self.layers[layer]
        head = min(n, self.prefix)
        if n <= self.prefix:
            return keys[self.row, :n], values[self.row, :n]
        tail = slice(self.offset, self.offset + n - head)
        return (
            torch.cat([keys[self.row, :head], keys[self.row, tail]]),
            torch.cat([values[self.row, :head], values[self.row, tail]]),
        )


class PrefixStore:
    """Keys and values of recently encoded sequences, least recently used dropped first."""

    def __init__(self, max_items: int = 48) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Seq, _Stored] = OrderedDict()

    def longest_prefix(self, seq: Seq) -> tuple[Seq | None, int]:
        """The stored sequence sharing the most leading tokens with ``seq``, and how many.

        At most ``len(seq) - 1``: the end token is always computed, it is the output.
        """
        best, best_len = None, 0
        for key in self._items:
            n = 0
            limit = min(len(key), len(seq) - 1)
            while n < limit and key[n] == seq[n]:
                n += 1
            if n > best_len:
                best, best_len = key, n
        if best is not None:
            self._items.move_to_end(best)
        return best, best_len

    def get(self, seq: Seq) -> _Stored:
        return self._items[seq]

    def put(self, seq: Seq, kv: _Stored) -> None:
        self._items[seq] = kv
        self._items.move_to_end(seq)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def encode_sequences(
    tower: Tower, seqs: Sequence[Seq], store: PrefixStore | None, device: torch.device
) -> tuple[Tensor, int]:
    """Projected end-token features of full token sequences (start and end markers
    included), and the number of token positions actually computed."""
    plans = [_plan(store, s) for s in seqs]
    suffix = [len(s) - p for s, (_, p) in zip(seqs, plans)]
    # A batch computes every row to its longest suffix: group rows of similar length.
    order = sorted(range(len(seqs)), key=lambda i: -suffix[i])
    out: list[Tensor | None] = [None] * len(seqs)
    group: list[int] = []
    for i in order + [-1]:
        if group and (
            i < 0
            or suffix[group[0]] * (len(group) + 1)
            > PAD_SLACK * (sum(suffix[g] for g in group) + suffix[i])
        ):
            features = _encode_group(
                tower, [seqs[g] for g in group], [plans[g] for g in group], store, device
            )
            for g, f in zip(group, features):
                out[g] = f
            group = []
        group.append(i)
    return torch.stack(out), sum(suffix)


PAD_SLACK = 1.3  # at most 30 % padding in a batch


def _plan(store: PrefixStore | None, seq: Seq) -> tuple[_Stored | None, int]:
    """The stored keys/values to start from (taken now: later puts may evict them)."""
    if store is None:
        return None, 0
    anchor, length = store.longest_prefix(seq)
    return (store.get(anchor), length) if anchor is not None else (None, 0)


def _encode_group(
    tower: Tower,
    seqs: Sequence[Seq],
    plans: Sequence[tuple[_Stored | None, int]],
    store: PrefixStore | None,
    device: torch.device,
) -> Tensor:
    batch = len(seqs)
    prefix = [p for _, p in plans]
    suffix = [len(s) - p for s, p in zip(seqs, prefix)]
    width_p, width_s = max(prefix), max(suffix)

    ids = torch.zeros((batch, width_s), dtype=torch.long)
    pos = torch.zeros((batch, width_s), dtype=torch.long)
    for b, (seq, p) in enumerate(zip(seqs, prefix)):
        ids[b, : suffix[b]] = torch.tensor(seq[p:])
        pos[b, : suffix[b]] = torch.arange(p, len(seq))
    ids, pos = ids.to(device), pos.to(device)
    x = tower.token_embedding(ids).type(tower.dtype) + tower.positions[pos].type(tower.dtype)

    # A query at suffix position i sees its whole prefix and suffix positions <= i.
    p_t = torch.tensor(prefix, device=device)
    prefix_ok = torch.arange(width_p, device=device)[None, :] < p_t[:, None]  # [B, P]
    causal = torch.ones((width_s, width_s), dtype=torch.bool, device=device).tril()
    mask = torch.cat(
        [prefix_ok[:, None, :].expand(batch, width_s, width_p), causal.expand(batch, -1, -1)],
        dim=2,
    )[:, None]  # [B, 1, S, P+S]

    anchors = [a for a, _ in plans]
    layers_kv: list[tuple[Tensor, Tensor]] = []
    heads = tower.heads
    for number, layer in enumerate(tower.layers):
        q, k, v = layer.qkv(layer.ln1(x))
        if width_p:
            pk = x.new_zeros((batch, width_p, k.shape[-1]))
            pv = x.new_zeros((batch, width_p, v.shape[-1]))
            for b, anchor in enumerate(anchors):
                if anchor is not None and prefix[b]:
                    pk[b, : prefix[b]], pv[b, : prefix[b]] = anchor.leading(number, prefix[b])
            keys, values = torch.cat([pk, k], 1), torch.cat([pv, v], 1)
        else:
            keys, values = k, v
        layers_kv.append((keys, values))
        attended = F.scaled_dot_product_attention(
            _heads(q, heads), _heads(keys, heads), _heads(values, heads), attn_mask=mask
        )
        x = x + layer.out(attended.transpose(1, 2).reshape(x.shape))
        x = x + layer.mlp(layer.ln2(x))

    if store is not None:
        for b, seq in enumerate(seqs):
            store.put(tuple(seq), _Stored(layers_kv, b, prefix[b], width_p))
    last = torch.tensor([s - 1 for s in suffix], device=device)
    pooled = x[torch.arange(batch, device=device), last]
    return tower.final(pooled)


def _heads(t: Tensor, heads: int) -> Tensor:
    b, n, width = t.shape
    return t.reshape(b, n, heads, width // heads).transpose(1, 2)
