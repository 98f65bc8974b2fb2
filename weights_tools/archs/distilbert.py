"""DistilBERT (Hugging Face DistilBertModel / DistilBertForMaskedLM checkpoints).

Accepts key names with or without the `distilbert.` prefix; the MLM head (vocab_transform,
vocab_layer_norm, vocab_projector) and buffers (position_ids) are skipped. q_lin/k_lin/v_lin are
fused into one [3D, D] weight + [3D] bias (rows q; k; v), the layout ViT's in_proj has, so both
models run one GEMM for the three projections. Canonical names: docs/FORMAT.md, "distilbert".
"""

from __future__ import annotations

import json

import numpy as np

from weights_tools.sources import ExportError, Source, take_tensor, read_vocab_file

LAYER_NORM_EPS = 1e-12  # hard-coded in HF's DistilBERT (nn.LayerNorm(dim, eps=1e-12))
SKIPPED_PREFIXES = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")
SPECIAL_TOKENS = ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token")
SPECIAL_DEFAULTS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "pad_token": "[PAD]", "mask_token": "[MASK]"}
# distilbert-base-cased
BASE = {"dim": 768, "n_heads": 12, "n_layers": 6, "hidden_dim": 3072,
        "max_position_embeddings": 512}


def add_arguments(parser) -> None:
    g = parser.add_argument_group("distilbert (--random-init sizes; default distilbert-base)")
    g.add_argument("--layers", type=int, default=None, help="number of transformer blocks (6)")
    g.add_argument("--dim", type=int, default=None, help="hidden size (768)")
    g.add_argument("--heads", type=int, default=None, help="attention heads (12)")
    g.add_argument("--hidden-dim", type=int, default=None, help="FFN width (3072)")
    g.add_argument("--max-positions", type=int, default=None, help="position embeddings (512)")


def _random_config(args) -> dict:
    cfg = dict(BASE)
    for key, arg in (("n_layers", "layers"), ("dim", "dim"), ("n_heads", "heads"),
                     ("hidden_dim", "hidden_dim"), ("max_position_embeddings", "max_positions")):
        value = getattr(args, arg, None)
        if value is not None:
            if value < 1:
                raise ExportError(f"--{arg.replace('_', '-')} must be >= 1, got {value}")
            cfg[key] = value
    if cfg["dim"] % cfg["n_heads"]:
        raise ExportError(f"--dim {cfg['dim']} is not a multiple of --heads {cfg['n_heads']}")
    return cfg


def random_source(seed: int, args) -> Source:
    """A DistilBertModel-shaped state dict (HF key names) with random weights: nn.Linear's default
    init for the projections (activations stay O(1)), N(0, 1) embeddings, and LayerNorm gammas /
    betas away from 1 / 0 so that every affine parameter matters in the parity tests."""
    import torch

    torch.manual_seed(seed)
    cfg = _random_config(args)
    vocab = read_vocab_file(args.vocab)
    d, f = cfg["dim"], cfg["hidden_dim"]
    g = torch.Generator().manual_seed(seed + 1)
    state: dict[str, torch.Tensor] = {}

    def linear(name: str, out_f: int, in_f: int) -> None:
        layer = torch.nn.Linear(in_f, out_f)
        state[name + ".weight"] = layer.weight.detach().clone()
        state[name + ".bias"] = layer.bias.detach().clone()

    def norm(name: str) -> None:
        state[name + ".weight"] = torch.rand(d, generator=g) + 0.5
        state[name + ".bias"] = torch.randn(d, generator=g) * 0.2

    state["embeddings.word_embeddings.weight"] = torch.randn(len(vocab), d, generator=g)
    state["embeddings.position_embeddings.weight"] = torch.randn(
        cfg["max_position_embeddings"], d, generator=g)
    norm("embeddings.LayerNorm")
    for i in range(cfg["n_layers"]):
        p = f"transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            linear(p + "attention." + lin, d, d)
        norm(p + "sa_layer_norm")
        linear(p + "ffn.lin1", f, d)
        linear(p + "ffn.lin2", d, f)
        norm(p + "output_layer_norm")
    hf_config = dict(cfg, vocab_size=len(vocab), activation="gelu", model_type="distilbert",
                     sinusoidal_pos_embds=False)
    lower = "uncased" in args.vocab
    return Source(path=None, description=f"random distilbert ({cfg}, seed {seed})", sha256=None,
                  state_dict=state, hf_config=hf_config, vocab=vocab,
                  tokenizer_config={"do_lower_case": lower, "model_max_length": 512})


def _strip(state: dict) -> dict:
    """Key names without the `distilbert.` prefix; MLM head and buffers dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith(SKIPPED_PREFIXES) or key.endswith("position_ids"):
            continue
        name = key[len("distilbert."):] if key.startswith("distilbert.") else key
        if name in out:
            raise ExportError(f"tensor {name} appears both with and without the distilbert. prefix")
        out[name] = value
    return out


def _config(source: Source, state: dict, heads: int | None) -> dict:
    """Hyper-parameters: config.json where there is one, the tensor shapes otherwise."""
    if "embeddings.word_embeddings.weight" not in state:
        raise ExportError("tensor embeddings.word_embeddings.weight is missing from the checkpoint "
                          "(is this a DistilBERT checkpoint?)")
    vocab_size, dim = (int(v) for v in state["embeddings.word_embeddings.weight"].shape)
    n_layers = 0
    while f"transformer.layer.{n_layers}.attention.q_lin.weight" in state:
        n_layers += 1
    if n_layers == 0:
        raise ExportError("tensor transformer.layer.0.attention.q_lin.weight is missing")
    hc = source.hf_config or {}
    if hc.get("model_type") not in (None, "distilbert"):
        raise ExportError(f"config.json says model_type {hc.get('model_type')!r}, expected distilbert")
    if hc.get("activation", "gelu") != "gelu":
        raise ExportError(f"config.json activation {hc['activation']!r}: only gelu is supported")
    if hc.get("sinusoidal_pos_embds"):
        # The sinusoids are stored in position_embeddings.weight like learned ones: same forward.
        pass
    cfg = {
        "vocab_size": vocab_size,
        "dim": dim,
        "n_layers": n_layers,
        "n_heads": int(heads or hc.get("n_heads", 12)),
        "hidden_dim": int(state["transformer.layer.0.ffn.lin1.weight"].shape[0])
        if "transformer.layer.0.ffn.lin1.weight" in state else int(hc.get("hidden_dim", 4 * dim)),
        "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0])
        if "embeddings.position_embeddings.weight" in state
        else int(hc.get("max_position_embeddings", 512)),
        "eps": LAYER_NORM_EPS,
    }
    for key in ("dim", "n_layers", "hidden_dim", "vocab_size", "max_position_embeddings", "n_heads"):
        if key in hc and int(hc[key]) != cfg[key]:
            raise ExportError(f"config.json {key} = {hc[key]} but the tensors say {cfg[key]}")
    if dim % cfg["n_heads"]:
        raise ExportError(f"dim {dim} is not a multiple of n_heads {cfg['n_heads']}")
    return cfg


def _token(tc: dict, key: str) -> str:
    value = tc.get(key, SPECIAL_DEFAULTS[key])
    if isinstance(value, dict):  # AddedToken serialised by newer transformers
        value = value.get("content")
    if not isinstance(value, str) or not value:
        raise ExportError(f"tokenizer_config.json {key} is not a token string: {value!r}")
    return value


def _tokenizer(source: Source, cfg: dict) -> dict:
    tc = source.tokenizer_config or {}
    lowercase = bool(tc.get("do_lower_case", True))  # HF's DistilBertTokenizer default
    strip = tc.get("strip_accents", None)
    max_length = cfg["max_position_embeddings"]
    mml = tc.get("model_max_length")
    if isinstance(mml, int) and 2 <= mml < max_length:  # HF writes 1e30 for "no limit"
        max_length = mml
    tok = {
        "lowercase": lowercase,
        "strip_accents": lowercase if strip is None else bool(strip),
        "tokenize_chinese_chars": bool(tc.get("tokenize_chinese_chars", True)),
        "max_length": max_length,
    }
    for key in SPECIAL_TOKENS:
        tok[key] = _token(tc, key)
    return tok


def convert(source: Source, args):
    state = _strip(source.state_dict)
    cfg = _config(source, state, getattr(args, "heads", None))
    d, f, n = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"]
    out = {
        "embeddings.word": take_tensor(state, "embeddings.word_embeddings.weight", (cfg["vocab_size"], d)),
        "embeddings.position": take_tensor(state, "embeddings.position_embeddings.weight",
                                    (cfg["max_position_embeddings"], d)),
        "embeddings.norm.weight": take_tensor(state, "embeddings.LayerNorm.weight", (d,)),
        "embeddings.norm.bias": take_tensor(state, "embeddings.LayerNorm.bias", (d,)),
    }
    for i in range(n):
        src, dst = f"transformer.layer.{i}.", f"layers.{i}."
        att = src + "attention."
        out[dst + "attn.qkv.weight"] = np.concatenate(
            [take_tensor(state, att + p + "_lin.weight", (d, d)) for p in "qkv"], axis=0)
        out[dst + "attn.qkv.bias"] = np.concatenate(
            [take_tensor(state, att + p + "_lin.bias", (d,)) for p in "qkv"], axis=0)
        out[dst + "attn.out.weight"] = take_tensor(state, att + "out_lin.weight", (d, d))
        out[dst + "attn.out.bias"] = take_tensor(state, att + "out_lin.bias", (d,))
        out[dst + "attn_norm.weight"] = take_tensor(state, src + "sa_layer_norm.weight", (d,))
        out[dst + "attn_norm.bias"] = take_tensor(state, src + "sa_layer_norm.bias", (d,))
        out[dst + "mlp.fc1.weight"] = take_tensor(state, src + "ffn.lin1.weight", (f, d))
        out[dst + "mlp.fc1.bias"] = take_tensor(state, src + "ffn.lin1.bias", (f,))
        out[dst + "mlp.fc2.weight"] = take_tensor(state, src + "ffn.lin2.weight", (d, f))
        out[dst + "mlp.fc2.bias"] = take_tensor(state, src + "ffn.lin2.bias", (d,))
        out[dst + "mlp_norm.weight"] = take_tensor(state, src + "output_layer_norm.weight", (d,))
        out[dst + "mlp_norm.bias"] = take_tensor(state, src + "output_layer_norm.bias", (d,))
    used = {k for k in state if k.startswith(("embeddings.", "transformer.layer."))}
    known = set()
    for i in range(n):
        p = f"transformer.layer.{i}."
        known |= {p + s for s in (
            "attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight",
            "attention.k_lin.bias", "attention.v_lin.weight", "attention.v_lin.bias",
            "attention.out_lin.weight", "attention.out_lin.bias", "sa_layer_norm.weight",
            "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight",
            "ffn.lin2.bias", "output_layer_norm.weight", "output_layer_norm.bias")}
    known |= {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
              "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"}
    extra = sorted(used - known) + sorted(k for k in state if k not in used)
    if extra:
        raise ExportError(f"tensor {extra[0]} is not part of a DistilBERT model"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    if source.vocab is None:
        raise ExportError("no vocabulary: a distilbert source needs vocab.txt or tokenizer.json "
                          "beside config.json")
    vocab = source.vocab
    if len(vocab) != cfg["vocab_size"]:
        raise ExportError(f"vocabulary has {len(vocab)} tokens but "
                          f"embeddings.word_embeddings.weight has {cfg['vocab_size']} rows")
    for i, token in enumerate(vocab):
        if "\n" in token or "\r" in token:
            raise ExportError(f"vocabulary token {i} contains a line break")
    if len(set(vocab)) != len(vocab):
        raise ExportError("vocabulary has repeated tokens")
    tok = _tokenizer(source, cfg)
    for key in ("unk_token", "cls_token", "sep_token", "pad_token"):
        if tok[key] not in vocab:
            raise ExportError(f"vocabulary lacks the special token {tok[key]} ({key})")

    meta = {"config": json.dumps(cfg), "tokenizer": json.dumps(tok), "vocab": "\n".join(vocab)}
    return out, meta
