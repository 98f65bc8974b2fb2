"""BERT (Hugging Face BertModel / BertForMaskedLM / BertForPreTraining checkpoints).

The encoders behind most sentence-transformers models (all-MiniLM-L6-v2, bge-*-en-v1.5, e5-*-v2,
gte-*, multi-qa-MiniLM) and plain bert-base-(un)cased. Key names are accepted with or without the
`bert.` prefix; TF-era LayerNorm names (`gamma` / `beta`) are read as `weight` / `bias`; the MLM
and NSP heads (`cls.*`) and buffers (`position_ids`, `token_type_ids`) are skipped; the pooler
(dense + tanh over [CLS], unused by sentence-transformers) is dropped unless --keep-head.
query / key / value are fused into one [3H, H] weight + [3H] bias (rows q; k; v), the layout of
distilbert and ViT. The encoder block is DistilBERT's (post-LN, exact-erf GELU).
Canonical names: docs/FORMAT.md, "bert".
"""

from __future__ import annotations

import json

import numpy as np

from weights_tools.sources import ExportError, Source, read_vocab_file, take_tensor

SPECIAL_TOKENS = ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token")
SPECIAL_DEFAULTS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "pad_token": "[PAD]", "mask_token": "[MASK]"}
# Heads and buffers a BERT checkpoint may carry that embeddings do not use.
SKIPPED_PREFIXES = ("cls.",)
SKIPPED_SUFFIXES = ("position_ids", "token_type_ids")
# bert-base-uncased
BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12}
CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
               "intermediate_size", "max_position_embeddings", "type_vocab_size")
_SIZE_ARGS = (("hidden_size", "hidden_size"), ("num_hidden_layers", "layers"),
              ("num_attention_heads", "heads"), ("intermediate_size", "intermediate"),
              ("max_position_embeddings", "max_positions"), ("type_vocab_size", "type_vocab_size"))
# Per layer: HF name (after encoder.layer.N.) -> (canonical name after layers.N., shape kind).
_LAYER_TENSORS = (
    ("attention.output.dense", "attn.out", "hh"),
    ("attention.output.LayerNorm", "attn_norm", "norm"),
    ("intermediate.dense", "mlp.fc1", "fh"),
    ("output.dense", "mlp.fc2", "hf"),
    ("output.LayerNorm", "mlp_norm", "norm"),
)


def add_arguments(parser) -> None:
    g = parser.add_argument_group(
        "bert (--random-init sizes; default bert-base; "
        "all-MiniLM-L6: --hidden-size 384 --layers 6 --intermediate 1536)")
    g.add_argument("--hidden-size", type=int, default=None, help="hidden size (768)")
    g.add_argument("--layers", type=int, default=None, help="encoder layers (12)")
    g.add_argument("--heads", type=int, default=None,
                   help="attention heads (12; on conversion only for a source without config.json, "
                        "default hidden_size / 64)")
    g.add_argument("--intermediate", type=int, default=None, help="FFN width (3072)")
    g.add_argument("--max-positions", type=int, default=None, help="position embeddings (512)")
    g.add_argument("--type-vocab-size", type=int, default=None, help="token types (2)")


def _random_config(args) -> dict:
    cfg = dict(BASE)
    for key, arg in _SIZE_ARGS:
        value = getattr(args, arg, None)
        if value is not None:
            if value < 1:
                raise ExportError(f"--{arg.replace('_', '-')} must be >= 1, got {value}")
            cfg[key] = value
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ExportError(f"--hidden-size {cfg['hidden_size']} is not a multiple of --heads "
                          f"{cfg['num_attention_heads']}")
    return cfg


def random_state(cfg: dict, vocab_size: int, seed: int, prefix: str = "") -> dict:
    """A BertModel state dict (HF key names, pooler included) with random weights: nn.Linear's
    default init for the projections, N(0, 1) word / position / token-type embeddings, LayerNorm
    gammas / betas away from 1 / 0 so that every parameter matters in the parity tests."""
    import torch

    torch.manual_seed(seed)
    h, f = cfg["hidden_size"], cfg["intermediate_size"]
    g = torch.Generator().manual_seed(seed + 1)
    state: dict[str, torch.Tensor] = {}

    def linear(name: str, out_f: int, in_f: int) -> None:
        layer = torch.nn.Linear(in_f, out_f)
        state[prefix + name + ".weight"] = layer.weight.detach().clone()
        state[prefix + name + ".bias"] = layer.bias.detach().clone()

    def norm(name: str) -> None:
        state[prefix + name + ".weight"] = torch.rand(h, generator=g) + 0.5
        state[prefix + name + ".bias"] = torch.randn(h, generator=g) * 0.2

    state[prefix + "embeddings.word_embeddings.weight"] = torch.randn(vocab_size, h, generator=g)
    state[prefix + "embeddings.position_embeddings.weight"] = torch.randn(
        cfg["max_position_embeddings"], h, generator=g)
    state[prefix + "embeddings.token_type_embeddings.weight"] = torch.randn(
        cfg["type_vocab_size"], h, generator=g)
    norm("embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            linear(p + "attention.self." + name, h, h)
        linear(p + "attention.output.dense", h, h)
        norm(p + "attention.output.LayerNorm")
        linear(p + "intermediate.dense", f, h)
        linear(p + "output.dense", h, f)
        norm(p + "output.LayerNorm")
    linear("pooler.dense", h, h)
    return state


def hf_config(cfg: dict, vocab_size: int) -> dict:
    """config.json of a BertModel with these sizes (what HF writes, the keys Tern reads)."""
    return dict(cfg, vocab_size=vocab_size, hidden_act="gelu", model_type="bert",
                architectures=["BertModel"], position_embedding_type="absolute")


def random_source(seed: int, args) -> Source:
    cfg = _random_config(args)
    vocab = read_vocab_file(args.vocab)
    state = random_state(cfg, len(vocab), seed)
    lower = "uncased" in args.vocab
    return Source(path=None, description=f"random bert ({cfg}, seed {seed})", sha256=None,
                  state_dict=state, hf_config=hf_config(cfg, len(vocab)), vocab=vocab,
                  tokenizer_config={"do_lower_case": lower, "model_max_length": 512})


def _canonical_key(key: str) -> str:
    """HF key without the `bert.` prefix, TF-era gamma / beta as weight / bias."""
    name = key[len("bert."):] if key.startswith("bert.") else key
    if name.endswith(".gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith(".beta"):
        name = name[: -len("beta")] + "bias"
    return name


def _strip(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if key.startswith(SKIPPED_PREFIXES) or key.endswith(SKIPPED_SUFFIXES):
            continue
        name = _canonical_key(key)
        if name in out:
            raise ExportError(f"tensor {name} appears twice in the checkpoint (with and without "
                              "the bert. prefix, or as both weight and gamma)")
        out[name] = value
    return out


def _dims(state: dict, name: str, rank: int) -> tuple[int, ...]:
    if name not in state:
        raise ExportError(f"tensor {name} is missing from the checkpoint (is this a BERT "
                          "checkpoint?)")
    shape = tuple(int(v) for v in state[name].shape)
    if len(shape) != rank:
        raise ExportError(f"tensor {name} has shape {list(shape)}, expected rank {rank}")
    return shape


def _config(source: Source, state: dict, heads: int | None) -> dict:
    """Every hyper-parameter: config.json where there is one (checked against the tensor
    shapes), the shapes (and --heads) otherwise."""
    hc = source.hf_config or {}
    if hc.get("model_type") not in (None, "bert"):
        raise ExportError(f"config.json model_type is {hc.get('model_type')!r}, expected bert")
    act = hc.get("hidden_act", "gelu")
    if act != "gelu":
        raise ExportError(f"config.json hidden_act is {act!r}: Tern's bert runs exact (erf) gelu "
                          "only")
    pos_type = hc.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise ExportError(f"config.json position_embedding_type is {pos_type!r}: only absolute "
                          "position embeddings are supported")
    if hc.get("is_decoder") or hc.get("add_cross_attention"):
        raise ExportError("config.json: decoder / cross-attention BERT models are not supported")
    vocab_size, h = _dims(state, "embeddings.word_embeddings.weight", 2)
    layers = 0
    while f"encoder.layer.{layers}.attention.self.query.weight" in state:
        layers += 1
    if layers == 0:
        raise ExportError("tensor encoder.layer.0.attention.self.query.weight is missing from the "
                          "checkpoint (is this a BERT checkpoint?)")
    cfg = {
        "vocab_size": vocab_size,
        "hidden_size": h,
        "num_hidden_layers": layers,
        "num_attention_heads": int(hc.get("num_attention_heads") or heads or max(1, h // 64)),
        "intermediate_size": _dims(state, "encoder.layer.0.intermediate.dense.weight", 2)[0],
        "max_position_embeddings": _dims(state, "embeddings.position_embeddings.weight", 2)[0],
        "type_vocab_size": _dims(state, "embeddings.token_type_embeddings.weight", 2)[0],
        "layer_norm_eps": float(hc.get("layer_norm_eps", BASE["layer_norm_eps"])),
        "hidden_act": "gelu",
    }
    if heads is not None and "num_attention_heads" in hc and heads != cfg["num_attention_heads"]:
        raise ExportError(f"--heads {heads} disagrees with config.json num_attention_heads "
                          f"{hc['num_attention_heads']}")
    for key in CONFIG_KEYS:
        if key in hc:
            try:
                value = int(hc[key])
            except (TypeError, ValueError):
                raise ExportError(f"config.json {key} is {hc[key]!r}, expected an "
                                  "integer") from None
            if value != cfg[key]:
                raise ExportError(f"config.json {key} = {hc[key]} but the tensors say {cfg[key]}")
    if not (0 < cfg["layer_norm_eps"] < 1):
        raise ExportError(f"config.json layer_norm_eps is {cfg['layer_norm_eps']}, expected in "
                          "(0, 1)")
    if h % cfg["num_attention_heads"]:
        raise ExportError(f"hidden_size {h} is not a multiple of num_attention_heads "
                          f"{cfg['num_attention_heads']}")
    return cfg


def _token(tc: dict, key: str) -> str:
    value = tc.get(key, SPECIAL_DEFAULTS[key])
    if isinstance(value, dict):  # AddedToken serialised by newer transformers
        value = value.get("content")
    if not isinstance(value, str) or not value:
        raise ExportError(f"tokenizer_config.json {key} is not a token string: {value!r}")
    return value


def tokenizer_metadata(source: Source, max_positions: int) -> dict:
    """The `tokenizer` metadata of a WordPiece model: tokenizer_config.json's settings, with
    tokenizer.json's BertNormalizer filling what it leaves out (sources.load_hf_directory), and
    HF's defaults (lowercase, strip_accents = lowercase, Chinese characters split) otherwise."""
    tc = source.tokenizer_config or {}
    for key in ("do_lower_case", "tokenize_chinese_chars"):
        if key in tc and not isinstance(tc[key], bool):
            raise ExportError(f"tokenizer_config.json {key} is {tc[key]!r}, expected a boolean")
    if tc.get("strip_accents") is not None and not isinstance(tc["strip_accents"], bool):
        raise ExportError(f"tokenizer_config.json strip_accents is {tc['strip_accents']!r}, "
                          "expected a boolean or null")
    lowercase = tc.get("do_lower_case", True)  # HF's BertTokenizer default
    strip = tc.get("strip_accents", None)
    chinese = tc.get("tokenize_chinese_chars", True)
    max_length = max_positions
    mml = tc.get("model_max_length")
    if isinstance(mml, int) and 2 <= mml < max_length:  # HF writes 1e30 for "no limit"
        max_length = mml
    tok = {"lowercase": lowercase, "strip_accents": lowercase if strip is None else strip,
           "tokenize_chinese_chars": chinese, "max_length": max_length}
    for key in SPECIAL_TOKENS:
        tok[key] = _token(tc, key)
    return tok


def check_vocab(vocab: list[str] | None, rows: int, tok: dict) -> None:
    if vocab is None:
        raise ExportError("no vocabulary: a text model source needs vocab.txt or tokenizer.json "
                          "beside config.json")
    if len(vocab) != rows:
        raise ExportError(f"vocabulary has {len(vocab)} tokens but "
                          f"embeddings.word_embeddings.weight has {rows} rows")
    for i, token in enumerate(vocab):
        if "\n" in token or "\r" in token:
            raise ExportError(f"vocabulary token {i} contains a line break")
    if len(set(vocab)) != len(vocab):
        raise ExportError("vocabulary has repeated tokens")
    for key in ("unk_token", "cls_token", "sep_token", "pad_token"):
        if tok[key] not in vocab:
            raise ExportError(f"vocabulary lacks the special token {tok[key]} ({key})")


def convert(source: Source, args):
    state = _strip(source.state_dict)
    cfg = _config(source, state, getattr(args, "heads", None))
    h, f, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    used: set[str] = set()

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        used.add(name)
        return take_tensor(state, name, shape)

    out = {
        "embeddings.word": take("embeddings.word_embeddings.weight", (cfg["vocab_size"], h)),
        "embeddings.position": take("embeddings.position_embeddings.weight",
                                    (cfg["max_position_embeddings"], h)),
        "embeddings.token_type": take("embeddings.token_type_embeddings.weight",
                                      (cfg["type_vocab_size"], h)),
        "embeddings.norm.weight": take("embeddings.LayerNorm.weight", (h,)),
        "embeddings.norm.bias": take("embeddings.LayerNorm.bias", (h,)),
    }
    shapes = {"hh": (h, h), "fh": (f, h), "hf": (h, f), "norm": (h,)}
    for i in range(n):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        att = src + "attention.self."
        out[dst + "attn.qkv.weight"] = np.concatenate(
            [take(att + p + ".weight", (h, h)) for p in ("query", "key", "value")], axis=0)
        out[dst + "attn.qkv.bias"] = np.concatenate(
            [take(att + p + ".bias", (h,)) for p in ("query", "key", "value")], axis=0)
        for old, new, kind in _LAYER_TENSORS:
            wshape = shapes[kind]
            out[dst + new + ".weight"] = take(src + old + ".weight", wshape)
            out[dst + new + ".bias"] = take(src + old + ".bias", (wshape[0],))
    pooler = [k for k in state if k.startswith("pooler.")]
    if args.keep_head:
        if not pooler:
            raise ExportError("--keep-head given but the checkpoint has no pooler "
                              "(pooler.dense.weight)")
        out["pooler.weight"] = take("pooler.dense.weight", (h, h))
        out["pooler.bias"] = take("pooler.dense.bias", (h,))
        cfg["pooler"] = True
    used |= set(pooler)
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise ExportError(f"tensor {extra[0]} is not part of a BERT model"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    tok = tokenizer_metadata(source, cfg["max_position_embeddings"])
    check_vocab(source.vocab, cfg["vocab_size"], tok)
    meta = {"config": json.dumps(cfg), "tokenizer": json.dumps(tok),
            "vocab": "\n".join(source.vocab)}
    return out, meta
