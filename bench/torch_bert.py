"""BERT (Hugging Face BertModel, last_hidden_state) as a plain torch module.

Hugging Face `transformers` is not installable here, so the benchmark's PyTorch and ONNX peers
use this module. Its parameter names are HF's own (without the `bert.` prefix; no pooler), so an
HF BertModel state dict loads with load_state_dict(strict=True) once the pooler and buffers are
dropped (hf_state_dict), and it computes what HF computes for a single text (token types 0):

    h = LayerNorm(word_emb[ids] + pos_emb[0..T-1] + token_type_emb[0])      eps layer_norm_eps
    for each of num_hidden_layers blocks (post-norm):
        a = attention.output.dense(softmax(q k^T / sqrt(d_head), masked) v)    per head
        h = attention.output.LayerNorm(h + a)
        h = output.LayerNorm(h + output.dense(gelu(intermediate.dense(h))))   exact-erf GELU
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not a multiple of {heads} heads")
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        dh = d // self.heads

        def split(y):  # (B, T, D) -> (B, H, T, dh)
            return y.view(b, t, self.heads, dh).transpose(1, 2)

        q, k, v = split(self.query(x)) / math.sqrt(dh), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(2, 3))
        if mask is not None:
            scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
        return torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, d)


class DenseNorm(nn.Module):
    """BertSelfOutput / BertOutput: LayerNorm(residual + dense(x))."""

    def __init__(self, n_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(residual + self.dense(x))


class Attention(nn.Module):
    def __init__(self, hidden, heads, eps):
        super().__init__()
        setattr(self, "self", SelfAttention(hidden, heads))
        self.output = DenseNorm(hidden, hidden, eps)

    def forward(self, x, mask):
        return self.output(getattr(self, "self")(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.dense = nn.Linear(hidden, inter)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, hidden, heads, inter, eps):
        super().__init__()
        self.attention = Attention(hidden, heads, eps)
        self.intermediate = Intermediate(hidden, inter)
        self.output = DenseNorm(inter, hidden, eps)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, layers, hidden, heads, inter, eps):
        super().__init__()
        self.layer = nn.ModuleList(Layer(hidden, heads, inter, eps) for _ in range(layers))


class Embeddings(nn.Module):
    def __init__(self, vocab, hidden, positions, types, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = (self.word_embeddings(ids) + self.position_embeddings(positions)[None]
             + self.token_type_embeddings.weight[0])
        return self.LayerNorm(x)


class BertModel(nn.Module):
    """forward(input_ids (B, T) int64, attention_mask (B, T) or None) -> (B, T, hidden)."""

    def __init__(self, vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                 type_vocab_size=2, layer_norm_eps=1e-12):
        super().__init__()
        self.embeddings = Embeddings(vocab_size, hidden_size, max_position_embeddings,
                                     type_vocab_size, layer_norm_eps)
        self.encoder = Encoder(num_hidden_layers, hidden_size, num_attention_heads,
                               intermediate_size, layer_norm_eps)

    def forward(self, input_ids, attention_mask=None):
        h = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            h = layer(h, attention_mask)
        return h


def hf_state_dict(state_dict: dict) -> dict:
    """An HF BERT state dict without the `bert.` prefix, heads (cls.*, pooler) and buffers."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("bert."):
            key = key[len("bert."):]
        if key.startswith(("cls.", "pooler.")) or key.endswith(("position_ids", "token_type_ids")):
            continue
        out[key] = value
    return out


def from_state_dict(state_dict: dict, hf_config: dict | None = None) -> BertModel:
    """The model whose shapes match `state_dict`, loaded; heads and eps from hf_config."""
    sd = hf_state_dict(state_dict)
    cfg = hf_config or {}
    vocab, hidden = sd["embeddings.word_embeddings.weight"].shape
    model = BertModel(
        vocab_size=vocab, hidden_size=hidden,
        num_hidden_layers=1 + max(int(k.split(".")[2]) for k in sd
                                  if k.startswith("encoder.layer.")),
        num_attention_heads=int(cfg.get("num_attention_heads", max(1, hidden // 64))),
        intermediate_size=sd["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=sd["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd["embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)))
    model.load_state_dict(sd, strict=True)
    return model.eval()
