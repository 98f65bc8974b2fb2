"""BERT / sentence-transformers test fixtures, built at test time (HF transformers is not here).

- TorchBert: HF BertModel's forward from torch.nn parts. nn.TransformerEncoderLayer(
  norm_first=False, activation="gelu") computes x = norm1(x + attn(x));
  x = norm2(x + linear2(gelu(linear1(x)))), which is BertLayer once in_proj = [query; key; value], out_proj = attention.output.dense,
  norm1 = attention.output.LayerNorm, linear1 = intermediate.dense, linear2 = output.dense,
  norm2 = output.LayerNorm. In front: LayerNorm(word[ids] + position[t] + token_type[0]).
- explicit_bert: the same forward written out with matmuls (a check on TorchBert itself).
- st_pool / st_head: sentence-transformers' Pooling (cls, mean, max, mean_sqrt_len, with
  include_prompt=False masking [CLS] and the prompt tokens as ST does), Dense (+ tanh), Normalize.
- write_hf_dir / write_st_dir: directories in the layouts users download (BertModel keys with or
  without `bert.`, an MLM / NSP head, position_ids buffers, model.safetensors or pytorch_model.bin,
  vocab.txt or tokenizer.json).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from weights_tools.archs import bert as bert_arch  # noqa: E402

VOCAB_CASED = ROOT / "data" / "vocab" / "bert-base-cased-vocab.txt"
VOCAB_UNCASED = ROOT / "data" / "vocab" / "bert-base-uncased-vocab.txt"
MINILM = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
          "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
          "layer_norm_eps": 1e-12}
# bert-base widths with 2 layers (the width-dependent code paths at a test-friendly cost).
BASE_2L = dict(bert_arch.BASE, num_hidden_layers=2)
TINY = {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 96, "max_position_embeddings": 64, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12}


def vocab_size(path: Path) -> int:
    with open(path, "rb") as f:
        return f.read().rstrip(b"\n").count(b"\n") + 1


def random_bert(cfg: dict, vocab: Path, seed: int) -> dict:
    """BertModel state dict (no prefix, pooler included) with random weights."""
    state = bert_arch.random_state(cfg, vocab_size(vocab), seed)
    state["embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"])[None]
    return state


class TorchBert(torch.nn.Module):
    def __init__(self, state: dict, cfg: dict):
        super().__init__()
        s = {k[5:] if k.startswith("bert.") else k: v for k, v in state.items()}
        h, heads, f = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]
        eps = cfg["layer_norm_eps"]
        self.word = s["embeddings.word_embeddings.weight"]
        self.pos = s["embeddings.position_embeddings.weight"]
        self.types = s["embeddings.token_type_embeddings.weight"]
        self.norm = torch.nn.LayerNorm(h, eps=eps)
        self.norm.weight.data = s["embeddings.LayerNorm.weight"]
        self.norm.bias.data = s["embeddings.LayerNorm.bias"]
        self.layers = torch.nn.ModuleList()
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            layer = torch.nn.TransformerEncoderLayer(h, heads, f, dropout=0.0, activation="gelu",
                                                     batch_first=True, norm_first=False,
                                                     layer_norm_eps=eps)
            a = p + "attention.self."
            layer.self_attn.in_proj_weight.data = torch.cat(
                [s[a + n + ".weight"] for n in ("query", "key", "value")])
            layer.self_attn.in_proj_bias.data = torch.cat(
                [s[a + n + ".bias"] for n in ("query", "key", "value")])
            layer.self_attn.out_proj.weight.data = s[p + "attention.output.dense.weight"]
            layer.self_attn.out_proj.bias.data = s[p + "attention.output.dense.bias"]
            layer.norm1.weight.data = s[p + "attention.output.LayerNorm.weight"]
            layer.norm1.bias.data = s[p + "attention.output.LayerNorm.bias"]
            layer.linear1.weight.data = s[p + "intermediate.dense.weight"]
            layer.linear1.bias.data = s[p + "intermediate.dense.bias"]
            layer.linear2.weight.data = s[p + "output.dense.weight"]
            layer.linear2.bias.data = s[p + "output.dense.bias"]
            layer.norm2.weight.data = s[p + "output.LayerNorm.weight"]
            layer.norm2.bias.data = s[p + "output.LayerNorm.bias"]
            self.layers.append(layer)
        self.eval()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.norm(self.word[ids] + self.pos[:t][None] + self.types[0])
        pad = torch.arange(t)[None, :] >= lengths[:, None]  # True = masked key
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return x


def run_bert(model: TorchBert, ids: np.ndarray, lengths) -> np.ndarray:
    """[N, T, H] token vectors (float32; rows past a length are whatever torch gives)."""
    with torch.inference_mode():
        return model(torch.from_numpy(np.asarray(ids, dtype=np.int64)),
                     torch.from_numpy(np.asarray(lengths, dtype=np.int64))).numpy()


def explicit_bert(state: dict, cfg: dict, ids: np.ndarray) -> np.ndarray:
    """One unpadded sequence [T] -> [T, H], BertModel's forward written out in float64."""
    s = {k: v.double() for k, v in state.items() if v.is_floating_point()}
    h, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    dh = h // heads
    ln = torch.nn.functional.layer_norm
    ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    t = len(ids)
    x = (s["embeddings.word_embeddings.weight"][ids]
         + s["embeddings.position_embeddings.weight"][:t]
         + s["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, (h,), s["embeddings.LayerNorm.weight"], s["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(name, v):
            return v @ s[p + name + ".weight"].T + s[p + name + ".bias"]

        q, k, v = (lin("attention.self." + n, x).view(t, heads, dh).transpose(0, 1)
                   for n in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(1, 2) / dh ** 0.5, dim=-1) @ v
        a = lin("attention.output.dense", att.transpose(0, 1).reshape(t, h))
        x = ln(x + a, (h,), s[p + "attention.output.LayerNorm.weight"],
               s[p + "attention.output.LayerNorm.bias"], eps)
        m = lin("output.dense", torch.nn.functional.gelu(lin("intermediate.dense", x)))
        x = ln(x + m, (h,), s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"], eps)
    return x.numpy()


# ---- sentence-transformers modules -------------------------------------------------------------

def st_pool(tokens: np.ndarray, length: int, mode: str, prompt_length: int = 0) -> np.ndarray:
    """ST Pooling of one sequence's [T, H] token vectors (rows >= length are padding).
    prompt_length > 0 (include_prompt=False): ST zeroes attention_mask[:prompt_length] before
    pooling, [CLS] included (prompt_length counts [CLS] and the prompt's tokens)."""
    x = torch.from_numpy(np.asarray(tokens[:length], dtype=np.float64))
    if mode == "cls":
        return x[0].numpy()
    mask = torch.ones(length, dtype=torch.float64)
    mask[:prompt_length] = 0
    if mode == "max":
        masked = x.clone()
        masked[mask == 0] = -1e9
        return masked.max(dim=0).values.numpy()
    total = (x * mask[:, None]).sum(0)
    count = torch.clamp(mask.sum(), min=1e-9)
    if mode == "mean":
        return (total / count).numpy()
    if mode == "mean_sqrt_len":
        return (total / torch.sqrt(count)).numpy()
    raise ValueError(mode)


def st_head(pooled: np.ndarray, dense: list[dict], normalize: bool) -> np.ndarray:
    """Dense modules ({"weight", "bias" or None, "activation"}) then Normalize, in float64."""
    x = torch.from_numpy(np.asarray(pooled, dtype=np.float64))
    for d in dense:
        x = x @ torch.as_tensor(d["weight"]).double().T
        if d.get("bias") is not None:
            x = x + torch.as_tensor(d["bias"]).double()
        if d["activation"] == "tanh":
            x = torch.tanh(x)
    if normalize:
        x = torch.nn.functional.normalize(x, p=2, dim=-1)
    return x.numpy()


# ---- writing directories -------------------------------------------------------------------------

_ST_DTYPE = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def write_safetensors(path: Path, state: dict) -> None:
    """A plain safetensors file (what HF's save_pretrained writes), from a state dict."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in state.items():
        code, np_dtype = _ST_DTYPE[t.dtype]
        data = np.ascontiguousarray(t.detach().cpu().numpy().astype(np_dtype)).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def write_weights(d: Path, state: dict, fmt: str) -> None:
    if fmt == "safetensors":
        write_safetensors(d / "model.safetensors", state)
    else:
        torch.save(state, d / "pytorch_model.bin")


def tokenizer_json(vocab: Path, lowercase: bool, strip_accents=None) -> dict:
    tokens = vocab.read_text(encoding="utf-8").rstrip("\n").split("\n")
    return {"version": "1.0", "truncation": None, "padding": None,
            "normalizer": {"type": "BertNormalizer", "clean_text": True,
                           "handle_chinese_chars": True, "strip_accents": strip_accents,
                           "lowercase": lowercase},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100,
                      "vocab": {t: i for i, t in enumerate(tokens)}}}


def write_hf_dir(d: Path, state: dict, cfg: dict, vocab: Path, *, prefix: str = "",
                 fmt: str = "safetensors", head: str | None = None, tokenizer: str = "vocab.txt",
                 tokenizer_config: dict | None = None, config_extra: dict | None = None) -> Path:
    """A HF BERT directory. head: None (BertModel), "mlm" (BertForMaskedLM), "pretraining"."""
    d.mkdir(parents=True, exist_ok=True)
    h, v = cfg["hidden_size"], vocab_size(vocab)
    out = {prefix + k: t for k, t in state.items()}
    arch = "BertModel"
    if head in ("mlm", "pretraining"):
        g = torch.Generator().manual_seed(5)
        out["cls.predictions.bias"] = torch.zeros(v)
        out["cls.predictions.transform.dense.weight"] = torch.randn(h, h, generator=g)
        out["cls.predictions.transform.dense.bias"] = torch.zeros(h)
        out["cls.predictions.transform.LayerNorm.weight"] = torch.ones(h)
        out["cls.predictions.transform.LayerNorm.bias"] = torch.zeros(h)
        out["cls.predictions.decoder.weight"] = out[prefix + "embeddings.word_embeddings.weight"]
        arch = "BertForMaskedLM"
        if head == "mlm":  # BertForMaskedLM has no pooler
            out = {k: t for k, t in out.items() if not k.startswith(prefix + "pooler.")}
    if head == "pretraining":
        out["cls.seq_relationship.weight"] = torch.zeros(2, h)
        out["cls.seq_relationship.bias"] = torch.zeros(2)
        arch = "BertForPreTraining"
    if fmt == "safetensors":  # safetensors refuses shared storage: HF saves tied weights once
        out = {k: t.clone() for k, t in out.items()}
    write_weights(d, out, fmt)
    config = dict(bert_arch.hf_config(cfg, v), architectures=[arch], **(config_extra or {}))
    (d / "config.json").write_text(json.dumps(config))
    if tokenizer in ("vocab.txt", "both"):
        (d / "vocab.txt").write_bytes(vocab.read_bytes())
    if tokenizer in ("tokenizer.json", "both"):
        lower = "uncased" in vocab.name
        (d / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab, lower)))
    if tokenizer_config is not None:
        (d / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return d


ST = "sentence_transformers.models."
TANH = "torch.nn.modules.activation.Tanh"
IDENTITY = "torch.nn.modules.linear.Identity"


def pooling_config(dim: int, mode: str, include_prompt: bool = True) -> dict:
    return {"word_embedding_dimension": dim,
            "pooling_mode_cls_token": mode == "cls",
            "pooling_mode_mean_tokens": mode == "mean",
            "pooling_mode_max_tokens": mode == "max",
            "pooling_mode_mean_sqrt_len_tokens": mode == "mean_sqrt_len",
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": include_prompt}


def random_dense(n_in: int, n_out: int, bias: bool, activation: str, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"weight": torch.randn(n_out, n_in, generator=g) / n_in ** 0.5,
            "bias": torch.randn(n_out, generator=g) * 0.1 if bias else None,
            "activation": activation}


def write_st_dir(d: Path, hf_writer, *, pooling: str = "mean", include_prompt: bool = True,
                 dense: list[dict] = (), normalize: bool = False, max_seq_length: int | None = 32,
                 prompts: dict | None = None, default_prompt: str | None = None,
                 nested: bool = False, fmt: str = "safetensors", hidden: int | None = None) -> Path:
    """A sentence-transformers directory. hf_writer(path) writes the Transformer's HF directory
    (at the root, or at 0_Transformer/ when nested). dense: random_dense() dicts."""
    d.mkdir(parents=True, exist_ok=True)
    tdir = d / "0_Transformer" if nested else d
    hf_writer(tdir)
    cfg = json.loads((tdir / "config.json").read_text())
    hidden = hidden or cfg.get("hidden_size") or cfg.get("dim")
    modules = [{"idx": 0, "name": "0", "path": "0_Transformer" if nested else "",
                "type": ST + "Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": ST + "Pooling"}]
    (d / "1_Pooling").mkdir(exist_ok=True)
    (d / "1_Pooling" / "config.json").write_text(
        json.dumps(pooling_config(hidden, pooling, include_prompt)))
    for dn in dense:
        idx = len(modules)
        sub = d / f"{idx}_Dense"
        sub.mkdir(exist_ok=True)
        n_out = dn["weight"].shape[0]
        (sub / "config.json").write_text(json.dumps({
            "in_features": int(dn["weight"].shape[1]), "out_features": int(n_out),
            "bias": dn["bias"] is not None,
            "activation_function": TANH if dn["activation"] == "tanh" else IDENTITY}))
        w = {"linear.weight": dn["weight"]}
        if dn["bias"] is not None:
            w["linear.bias"] = dn["bias"]
        write_weights(sub, w, fmt)
        modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Dense", "type": ST + "Dense"})
    if normalize:
        idx = len(modules)
        modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Normalize",
                        "type": ST + "Normalize"})
        (d / f"{idx}_Normalize").mkdir(exist_ok=True)
    (d / "modules.json").write_text(json.dumps(modules))
    if max_seq_length is not None:
        (tdir / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    (d / "config_sentence_transformers.json").write_text(json.dumps({
        "__version__": {"sentence_transformers": "3.0.1"}, "prompts": prompts or {},
        "default_prompt_name": default_prompt, "similarity_fn_name": "cosine"}))
    return d
