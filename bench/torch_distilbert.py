"""DistilBERT (Hugging Face DistilBertModel, last_hidden_state) as a plain torch module.

Hugging Face `transformers` is not installable here, so the benchmark's PyTorch and ONNX peers
use this module instead. Its parameter names are HF's own (without the `distilbert.` prefix), so
an HF state dict loads with load_state_dict(strict=True), and it computes what HF computes:

    h = LayerNorm(word_emb[ids] + pos_emb[0..T-1])                     eps 1e-12
    for each of n_layers blocks (post-norm):
        a = out_lin(softmax(q k^T / sqrt(d_head), masked) v)          per head
        h = sa_layer_norm(h + a)
        h = output_layer_norm(h + lin2(gelu(lin1(h))))                 exact-erf GELU
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.q_lin = nn.Linear(dim, dim)
        self.k_lin = nn.Linear(dim, dim)
        self.v_lin = nn.Linear(dim, dim)
        self.out_lin = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x (B, T, D), mask (B, T) with 1 = real token
        b, t, d = x.shape
        dh = d // self.n_heads

        def heads(y):  # (B, T, D) -> (B, H, T, dh)
            return y.view(b, t, self.n_heads, dh).transpose(1, 2)

        q = heads(self.q_lin(x)) / math.sqrt(dh)
        k = heads(self.k_lin(x))
        v = heads(self.v_lin(x))
        scores = torch.matmul(q, k.transpose(2, 3))  # (B, H, T, T)
        if mask is not None:
            scores = scores.masked_fill(mask[:, None, None, :] == 0,
                                        torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        context = torch.matmul(weights, v).transpose(1, 2).reshape(b, t, d)
        return self.out_lin(context)


class FFN(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.lin2(nn.functional.gelu(self.lin1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, hidden_dim: int):
        super().__init__()
        self.attention = MultiHeadSelfAttention(dim, n_heads)
        self.sa_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = FFN(dim, hidden_dim)
        self.output_layer_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, mask):
        x = self.sa_layer_norm(x + self.attention(x, mask))
        return self.output_layer_norm(x + self.ffn(x))


class Embeddings(nn.Module):
    def __init__(self, vocab_size: int, dim: int, max_positions: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(positions)[None])


class Transformer(nn.Module):
    def __init__(self, n_layers, dim, n_heads, hidden_dim):
        super().__init__()
        self.layer = nn.ModuleList(TransformerBlock(dim, n_heads, hidden_dim)
                                   for _ in range(n_layers))


class DistilBertModel(nn.Module):
    """forward(input_ids (B, T) int64, attention_mask (B, T) or None) -> (B, T, dim)."""

    def __init__(self, vocab_size=28996, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                 max_position_embeddings=512):
        super().__init__()
        self.embeddings = Embeddings(vocab_size, dim, max_position_embeddings)
        self.transformer = Transformer(n_layers, dim, n_heads, hidden_dim)

    def forward(self, input_ids, attention_mask=None):
        h = self.embeddings(input_ids)
        for block in self.transformer.layer:
            h = block(h, attention_mask)
        return h


def hf_state_dict(state_dict: dict) -> dict:
    """An HF DistilBert state dict with the `distilbert.` prefix and the MLM head removed."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("distilbert."):
            key = key[len("distilbert."):]
        if key.startswith(("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")):
            continue
        if key.endswith("position_ids"):  # a buffer in some HF versions, not a weight
            continue
        out[key] = value
    return out


def from_state_dict(state_dict: dict, hf_config: dict | None = None) -> DistilBertModel:
    """Builds the model whose shapes match `state_dict` (an HF DistilBert checkpoint) and loads it.

    Sizes come from the tensors; the head count, which shapes cannot tell, from hf_config
    ("n_heads", default 12).
    """
    sd = hf_state_dict(state_dict)
    vocab, dim = sd["embeddings.word_embeddings.weight"].shape
    positions = sd["embeddings.position_embeddings.weight"].shape[0]
    n_layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("transformer.layer."))
    hidden = sd["transformer.layer.0.ffn.lin1.weight"].shape[0]
    n_heads = int((hf_config or {}).get("n_heads", 12))
    model = DistilBertModel(vocab, dim, n_layers, n_heads, hidden, positions)
    model.load_state_dict(sd, strict=True)
    return model.eval()
