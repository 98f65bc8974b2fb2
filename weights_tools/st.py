"""sentence-transformers directories: what `SentenceTransformer(dir).encode(x)` does, as defaults.

A sentence-transformers directory names its modules, in order, in `modules.json`:

    [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
     {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
     {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
     {"idx": 3, "name": "3", "path": "3_Normalize",
      "type": "sentence_transformers.models.Normalize"}]

Tern runs the chain Transformer -> Pooling -> Dense* -> Normalize?, which is what the published
BERT-family models use. load_directory() reads it into a Source: the Transformer's Hugging Face
directory (the root or e.g. `0_Transformer/`) for the architecture module, plus a Spec of the
rest. After the architecture's convert(), apply() checks the modules against the encoder (Pooling
word_embedding_dimension and the first Dense in_features = hidden size, each Dense in = the
previous out) and adds the Dense weights as `head.dense.K.weight` / `.bias` and the `embedding`
metadata (docs/FORMAT.md, "Defaults of sentence-transformers directories"). Every problem is an
ExportError naming the file and the field; the frame then writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from weights_tools.sources import (ExportError, Source, load_hf_directory, load_weights_file,
                                   read_json, take_tensor)

ST_PREFIX = "sentence_transformers.models."
SUPPORTED = ("Transformer", "Pooling", "Dense", "Normalize")
# 1_Pooling/config.json booleans -> Tern pooling names; the unsupported ones are named in errors.
POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens":
                 "mean_sqrt_len"}
UNSUPPORTED_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
# Pooling(pooling_mode="...") spellings, accepted where a config carries the string form.
POOLING_STRINGS = {"cls": "cls", "mean": "mean", "max": "max", "mean_sqrt_len_tokens":
                   "mean_sqrt_len", "mean_sqrt_len": "mean_sqrt_len"}
ACTIVATIONS = {"torch.nn.modules.activation.Tanh": "tanh", "torch.nn.Tanh": "tanh",
               "torch.nn.modules.linear.Identity": "identity", "torch.nn.Identity": "identity"}


@dataclass
class Dense:
    config_file: str
    in_features: int
    out_features: int
    bias: bool
    activation: str               # "tanh" | "identity"
    weight: np.ndarray            # [out, in]
    bias_values: np.ndarray | None


@dataclass
class Spec:
    root: str
    pooling: str
    pooling_file: str
    pooling_dim: int | None
    include_prompt: bool
    dense: list[Dense] = field(default_factory=list)
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt: str | None = None
    max_seq_length: int | None = None
    max_seq_length_file: str | None = None
    lowercase_input: bool = False  # sentence_bert_config.json do_lower_case


def _rel(root: str, path: str) -> str:
    """A path as errors show it: relative to the directory given to the exporter."""
    rel = os.path.relpath(path, root)
    return os.path.join(os.path.basename(os.path.normpath(root)), rel) if rel != "." else root


def _module_dir(root: str, entry: dict, index: int, modules_file: str) -> str:
    path = entry.get("path", "")
    if not isinstance(path, str):
        raise ExportError(f"{modules_file}: module {index} path is {path!r}, expected a string")
    if os.path.isabs(path) or ".." in path.replace("\\", "/").split("/"):
        raise ExportError(f"{modules_file}: module {index} path {path!r} leaves the directory")
    return os.path.join(root, path) if path else root


def _bool(cfg: dict, key: str, default: bool, file: str) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ExportError(f"{file}: {key} is {value!r}, expected true or false")
    return value


def _positive_int(cfg: dict, key: str, file: str) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExportError(f"{file}: {key} is {value!r}, expected a positive integer")
    return value


def _pooling(root: str, d: str) -> tuple[str, str, int | None, bool]:
    file = os.path.join(d, "config.json")
    shown = _rel(root, file)
    if not os.path.isfile(file):
        raise ExportError(f"{shown} is missing (the Pooling module's config)")
    cfg = read_json(file)
    modes = [k for k in POOLING_MODES if _bool(cfg, k, False, shown)]
    for key in UNSUPPORTED_POOLING:
        if _bool(cfg, key, False, shown):
            raise ExportError(f"{shown}: {key} is not supported (Tern pools with cls, mean, max "
                              "or mean_sqrt_len)")
    if not modes and isinstance(cfg.get("pooling_mode"), str):
        name = cfg["pooling_mode"]
        if name not in POOLING_STRINGS:
            raise ExportError(f"{shown}: pooling_mode {name!r} is not supported (cls, mean, max, "
                              "mean_sqrt_len_tokens)")
        pooling = POOLING_STRINGS[name]
    elif not modes:
        raise ExportError(f"{shown}: no pooling mode is set (one of "
                          f"{', '.join(POOLING_MODES)} must be true)")
    elif len(modes) > 1:
        raise ExportError(f"{shown}: {modes[0]} and {modes[1]} are both true (concatenated "
                          "poolings are not supported)")
    else:
        pooling = POOLING_MODES[modes[0]]
    dim = None
    if "word_embedding_dimension" in cfg:
        dim = _positive_int(cfg, "word_embedding_dimension", shown)
    return pooling, shown, dim, _bool(cfg, "include_prompt", True, shown)


def _dense(root: str, d: str) -> Dense:
    file = os.path.join(d, "config.json")
    shown = _rel(root, file)
    if not os.path.isfile(file):
        raise ExportError(f"{shown} is missing (the Dense module's config)")
    cfg = read_json(file)
    n_in = _positive_int(cfg, "in_features", shown)
    n_out = _positive_int(cfg, "out_features", shown)
    bias = _bool(cfg, "bias", True, shown)
    act_name = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")  # ST's default
    if act_name not in ACTIVATIONS:
        raise ExportError(f"{shown}: activation_function {act_name!r} is not supported "
                          "(torch.nn.modules.activation.Tanh or torch.nn.modules.linear.Identity)")
    weights = None
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.isfile(os.path.join(d, name)):
            weights = os.path.join(d, name)
            break
    if weights is None:
        raise ExportError(f"{_rel(root, d)}: no model.safetensors or pytorch_model.bin (the Dense "
                          "module's weights)")
    state = load_weights_file(weights)
    shown_w = _rel(root, weights)
    try:
        w = take_tensor(state, "linear.weight", (n_out, n_in))
        b = take_tensor(state, "linear.bias", (n_out,)) if bias else None
    except ExportError as e:
        raise ExportError(f"{shown_w}: {e} ({shown}: in_features {n_in}, out_features {n_out})") \
            from None
    extra = sorted(k for k in state if k not in ("linear.weight", "linear.bias"))
    if not bias and "linear.bias" in state:
        extra.insert(0, "linear.bias")
    if extra:
        raise ExportError(f"{shown_w}: unexpected tensor {extra[0]} ({shown}: bias {bias})")
    return Dense(shown, n_in, n_out, bias, ACTIVATIONS[act_name], w, b)


def _transformer_settings(root: str, d: str, spec: Spec) -> None:
    file = os.path.join(d, "sentence_bert_config.json")
    if not os.path.isfile(file):
        return
    shown = _rel(root, file)
    cfg = read_json(file)
    if cfg.get("max_seq_length") is not None:
        spec.max_seq_length = _positive_int(cfg, "max_seq_length", shown)
        spec.max_seq_length_file = shown
    spec.lowercase_input = _bool(cfg, "do_lower_case", False, shown)


def _prompts(root: str, spec: Spec) -> None:
    file = os.path.join(root, "config_sentence_transformers.json")
    if not os.path.isfile(file):
        return
    shown = _rel(root, file)
    cfg = read_json(file)
    prompts = cfg.get("prompts", {}) or {}
    if not isinstance(prompts, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in prompts.items()):
        raise ExportError(f"{shown}: prompts must map prompt names to strings")
    default = cfg.get("default_prompt_name")
    if default is not None and (not isinstance(default, str) or default not in prompts):
        raise ExportError(f"{shown}: default_prompt_name {default!r} is not one of the prompts "
                          f"({', '.join(sorted(prompts)) or 'none'})")
    spec.prompts = dict(prompts)
    spec.default_prompt = default


def load_directory(root: str) -> Source:
    modules_file = os.path.join(root, "modules.json")
    shown = _rel(root, modules_file)
    try:
        with open(modules_file, "r", encoding="utf-8") as f:
            modules = json.load(f)
    except OSError as e:
        raise ExportError(f"cannot read {shown}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{shown} is not valid JSON: {e}") from None
    if not isinstance(modules, list) or not modules:
        raise ExportError(f"{shown}: expected a non-empty list of modules")
    kinds = []
    for i, entry in enumerate(modules):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str):
            raise ExportError(f"{shown}: module {i} has no type")
        short = kind[len(ST_PREFIX):] if kind.startswith(ST_PREFIX) else None
        if short not in SUPPORTED:
            raise ExportError(f"{shown}: module {i} type {kind!r} is not supported (Tern runs "
                              f"{', '.join(ST_PREFIX + s for s in SUPPORTED)})")
        kinds.append(short)
    order = "Transformer, Pooling, Dense (any number), Normalize (optional)"
    if kinds[0] != "Transformer" or kinds.count("Transformer") != 1:
        raise ExportError(f"{shown}: module 0 must be the only Transformer (expected {order})")
    if len(kinds) < 2 or kinds[1] != "Pooling" or kinds.count("Pooling") != 1:
        raise ExportError(f"{shown}: module 1 must be the only Pooling (expected {order}; "
                          f"got {', '.join(kinds)})")
    tail = kinds[2:]
    if "Normalize" in tail and (tail.index("Normalize") != len(tail) - 1
                                or tail.count("Normalize") != 1):
        raise ExportError(f"{shown}: Normalize must be the last module (expected {order}; "
                          f"got {', '.join(kinds)})")

    transformer_dir = _module_dir(root, modules[0], 0, shown)
    if not os.path.isfile(os.path.join(transformer_dir, "config.json")):
        raise ExportError(f"{_rel(root, os.path.join(transformer_dir, 'config.json'))} is missing "
                          f"(the Transformer module of {shown})")
    source = load_hf_directory(transformer_dir)
    pooling, pooling_file, pooling_dim, include_prompt = _pooling(
        root, _module_dir(root, modules[1], 1, shown))
    spec = Spec(root=root, pooling=pooling, pooling_file=pooling_file, pooling_dim=pooling_dim,
                include_prompt=include_prompt)
    for i, kind in enumerate(kinds[2:], start=2):
        if kind == "Dense":
            spec.dense.append(_dense(root, _module_dir(root, modules[i], i, shown)))
        else:
            spec.normalize = True
    _transformer_settings(root, transformer_dir, spec)
    _prompts(root, spec)
    source.sentence_transformers = spec
    source.description = f"sentence-transformers directory {root}"
    return source


def apply(spec: Spec, tensors: dict, metadata: dict) -> tuple[dict, dict]:
    """The modules after the Transformer, checked against the converted encoder, as `head.*`
    tensors and the `embedding` metadata."""
    if "embeddings.word" not in tensors or "tokenizer" not in metadata:
        raise ExportError("a sentence-transformers directory needs a text encoder (bert or "
                          "distilbert)")
    hidden = int(tensors["embeddings.word"].shape[1])
    if spec.pooling_dim is not None and spec.pooling_dim != hidden:
        raise ExportError(f"{spec.pooling_file}: word_embedding_dimension {spec.pooling_dim} is "
                          f"not the Transformer's hidden size {hidden}")
    tensors = dict(tensors)
    dense_meta = []
    width = hidden
    for k, d in enumerate(spec.dense):
        if d.in_features != width:
            what = "the Transformer's hidden size" if k == 0 else "the previous Dense out_features"
            raise ExportError(f"{d.config_file}: in_features {d.in_features} is not {what} {width}")
        prefix = f"head.dense.{k}"
        tensors[prefix + ".weight"] = d.weight
        if d.bias:
            tensors[prefix + ".bias"] = d.bias_values
        dense_meta.append({"prefix": prefix, "in": d.in_features, "out": d.out_features,
                           "bias": d.bias, "activation": d.activation})
        width = d.out_features
    tok = json.loads(metadata["tokenizer"])
    positions = int(json.loads(metadata["config"]).get(
        "max_position_embeddings", tok["max_length"]))
    max_length = tok["max_length"]
    if spec.max_seq_length is not None:
        # sentence-transformers truncates at max_seq_length whatever model_max_length says; more
        # than the position table holds is the directory's error.
        if spec.max_seq_length > positions:
            raise ExportError(f"{spec.max_seq_length_file}: max_seq_length {spec.max_seq_length} "
                              f"is more than the model's {positions} position embeddings")
        max_length = spec.max_seq_length
        tok["max_length"] = max(tok["max_length"], max_length)
    if spec.lowercase_input and not tok["lowercase"]:
        tok["lowercase"] = True  # ST lowercases the text; the tokenizer keeps its accent setting
    embedding = {"pooling": spec.pooling, "include_prompt": spec.include_prompt,
                 "dense": dense_meta, "normalize": spec.normalize, "prompts": spec.prompts,
                 "default_prompt": spec.default_prompt, "max_length": max_length, "dim": width}
    metadata = dict(metadata, tokenizer=json.dumps(tok), embedding=json.dumps(embedding))
    return tensors, metadata
