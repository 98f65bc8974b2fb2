"""CLIP (both towers): OpenAI checkpoints, open_clip state dicts, Hugging Face CLIPModel directories.

Sources:
  * OpenAI's `.pt` files are TorchScript archives: loaded with torch.jit.load, then state_dict()
    (the loader here; PyTorch state dicts of the same layout load with weights_only=True).
  * open_clip state dicts use OpenAI's names (visual.conv1, visual.transformer.resblocks.N,
    transformer.resblocks.N, token_embedding, ln_final, text_projection, logit_scale).
  * Hugging Face directories: config.json + model.safetensors / pytorch_model.bin (vision_model.*,
    text_model.*, visual_projection, text_projection) and their vocab.json + merges.txt.
Tokenizer: `--bpe bpe_simple_vocab_16e6.txt.gz` (OpenAI's file: the vocabulary is built from it as
simple_tokenizer.py does) or `--vocab vocab.json --merges merges.txt` (Hugging Face's files); a HF
directory brings its own. Sizes come from the tensor shapes; heads are width / 64 (OpenAI's rule)
unless --vision-heads / --text-heads. The activation is QuickGELU for OpenAI-layout checkpoints
(open_clip models trained with nn.GELU need --activation gelu) and the config's hidden_act for HF.
Canonical names: docs/FORMAT.md, "clip". ResNet image towers (RN50, ...) are not supported.
"""

from __future__ import annotations

import gzip
import json
import os
import zipfile

import numpy as np

from weights_tools import sources
from weights_tools.sources import ExportError, Source, take_tensor

LAYER_NORM_EPS = 1e-5
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# OpenAI's TorchScript archives carry these as tensors; build_model deletes them.
IGNORED = {"input_resolution", "context_length", "vocab_size"}
# accepts --vocab with a checkpoint (vocab.json); export.py asks
ACCEPTS_VOCAB = True
# --random-init defaults: a small model (the tests use it); ViT-B/32 is 768/12/32 and 512/12
RANDOM = {"embed_dim": 64, "image_size": 32, "patch_size": 8, "vision_width": 64,
          "vision_layers": 2, "vision_heads": 2, "context_length": 77, "text_width": 48,
          "text_layers": 2, "text_heads": 2}


def add_arguments(parser) -> None:
    g = parser.add_argument_group("clip")
    g.add_argument("--bpe", metavar="FILE.txt.gz", default=None,
                   help="OpenAI's BPE merges file (bpe_simple_vocab_16e6.txt.gz)")
    g.add_argument("--merges", metavar="merges.txt", default=None,
                   help="Hugging Face merges.txt, with --vocab vocab.json")
    g.add_argument("--activation", choices=("quick_gelu", "gelu"), default=None,
                   help="MLP activation (default: quick_gelu; HF: the config's hidden_act)")
    g.add_argument("--vision-heads", type=int, default=None, help="vision attention heads")
    g.add_argument("--text-heads", type=int, default=None, help="text attention heads")
    r = parser.add_argument_group("clip --random-init sizes")
    for key, value in RANDOM.items():
        if key in ("vision_heads", "text_heads"):
            continue
        r.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                       help=f"({value})")


# ---- tokenizer files -----------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte -> printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _check_merges(merges: list[tuple[str, str]], where: str) -> None:
    for i, m in enumerate(merges):
        if len(m) != 2 or not all(m) or any(" " in p or "\n" in p for p in m):
            raise ExportError(f"{where}: merge {i + 1} is not two tokens")


def vocab_from_bpe_file(path: str) -> tuple[list[str], list[tuple[str, str]]]:
    """simple_tokenizer.py: merges = lines[1:49152-256-2+1]; vocab = bytes, bytes + '</w>',
    the merges joined, then the two special tokens. Empty lines are skipped."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ExportError(f"cannot read BPE file {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise ExportError(f"BPE file {path} is not UTF-8 (byte offset {e.start})") from None
    lines = text.split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    _check_merges(merges, path)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += [BOS, EOS]
    return vocab, merges


def vocab_from_hf_files(vocab_path: str, merges_path: str) -> tuple[list[str], list[tuple[str, str]]]:
    try:
        with open(vocab_path, "r", encoding="utf-8") as f:
            table = json.load(f)
    except OSError as e:
        raise ExportError(f"cannot read {vocab_path}: {e.strerror}") from None
    except ValueError as e:
        raise ExportError(f"{vocab_path} is not valid JSON: {e}") from None
    if not isinstance(table, dict) or not table:
        raise ExportError(f"{vocab_path}: expected a JSON object token -> id")
    by_id = {}
    for token, i in table.items():
        if not isinstance(i, int) or i < 0 or i in by_id or "\n" in token:
            raise ExportError(f"{vocab_path}: token {token!r} has an invalid or repeated id {i!r}")
        by_id[i] = token
    if sorted(by_id) != list(range(len(by_id))):
        raise ExportError(f"{vocab_path}: ids are not 0..{len(by_id) - 1}")
    vocab = [by_id[i] for i in range(len(by_id))]
    try:
        with open(merges_path, "r", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise ExportError(f"cannot read {merges_path}: {e.strerror}") from None
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    _check_merges(merges, merges_path)
    return vocab, merges


def _tokenizer(source: Source, args, context_length: int):
    """(vocab, merges) from the options or the source, checked for what Tern's tokenizer needs."""
    bpe, vocab_json, merges_txt = getattr(args, "bpe", None), None, getattr(args, "merges", None)
    if getattr(args, "vocab_given", False):
        vocab_json = args.vocab
    if bpe and (vocab_json or merges_txt):
        raise ExportError("give --bpe or --vocab/--merges, not both")
    if bool(vocab_json) != bool(merges_txt):
        raise ExportError("--vocab and --merges go together (Hugging Face's vocab.json, merges.txt)")
    if bpe:
        vocab, merges = vocab_from_bpe_file(bpe)
    elif vocab_json:
        vocab, merges = vocab_from_hf_files(vocab_json, merges_txt)
    elif source.vocab is not None:
        vocab, merges = source.vocab, source.tokenizer_config["merges"]
    else:
        raise ExportError("clip needs its tokenizer: --bpe bpe_simple_vocab_16e6.txt.gz or "
                          "--vocab vocab.json --merges merges.txt")
    ids = {t: i for i, t in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise ExportError("the CLIP vocabulary has repeated tokens")
    for special in (BOS, EOS):
        if special not in ids:
            raise ExportError(f"the CLIP vocabulary lacks {special}")
    for ch in bytes_to_unicode().values():
        for t in (ch, ch + "</w>"):
            if t not in ids:
                raise ExportError(f"the CLIP vocabulary lacks the byte token {t!r}")
    for a, b in merges:
        if a not in ids or b not in ids or a + b not in ids:
            raise ExportError(f"merge '{a} {b}' names a token the vocabulary lacks")
    tok = {"type": "bpe", "max_length": context_length, "bos_token": BOS, "eos_token": EOS,
           "pad_token": ""}
    return vocab, merges, tok


# ---- sources -------------------------------------------------------------------------------------

def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_source(path: str, args) -> Source:
    """OpenAI TorchScript archives (torch.jit.load), HF directories with a BPE tokenizer, else the
    common loader."""
    import torch
    if os.path.isdir(path):
        return _load_hf_directory(path)
    if os.path.isfile(path) and _is_torchscript(path):
        try:
            module = torch.jit.load(path, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - any load failure is "unreadable"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"cannot load {path} as a TorchScript archive: {first}") from None
        state = {k: v for k, v in module.state_dict().items()}
        return Source(path=path, description=f"TorchScript archive {os.path.basename(path)}",
                      sha256=sources.sha256_file(path), state_dict=state)
    return sources.load_source(path)


def _load_hf_directory(path: str) -> Source:
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ExportError(f"{path} is a directory without config.json "
                          "(expected a Hugging Face CLIPModel directory)")
    with open(config_path, "r", encoding="utf-8") as f:
        try:
            config = json.load(f)
        except ValueError as e:
            raise ExportError(f"{config_path} is not valid JSON: {e}") from None
    weights = None
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.isfile(os.path.join(path, name)):
            weights = os.path.join(path, name)
            break
    if weights is None:
        raise ExportError(f"{path}: no model.safetensors or pytorch_model.bin in the directory")
    state = (sources.load_safetensors(weights) if weights.endswith(".safetensors")
             else sources.load_source(weights).state_dict)
    vocab = merges = None
    vj, mt = os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt")
    if os.path.isfile(vj) and os.path.isfile(mt):
        vocab, merges = vocab_from_hf_files(vj, mt)
    return Source(path=weights, description=f"Hugging Face directory {path}",
                  sha256=sources.sha256_file(weights), state_dict=state, hf_config=config,
                  vocab=vocab, tokenizer_config={"merges": merges} if merges is not None else None)


# ---- random init ---------------------------------------------------------------------------------

def random_source(seed: int, args) -> Source:
    """An OpenAI-layout CLIP state dict with random weights (LayerNorms randomised too, so every
    parameter matters in the parity tests). Tokenizer: --bpe or --vocab/--merges, else the
    256 byte tokens (alone and with </w>) and the special tokens, no merges."""
    import torch
    cfg = dict(RANDOM)
    for key in RANDOM:
        value = getattr(args, key, None)
        if value is not None:
            if value < 1:
                raise ExportError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
            cfg[key] = value
    for key, width in (("vision_heads", "vision_width"), ("text_heads", "text_width")):
        if getattr(args, key, None):
            cfg[key] = getattr(args, key)
        elif cfg[width] != RANDOM[width]:  # a width given: OpenAI's rule, width / 64
            cfg[key] = max(1, cfg[width] // 64)
    if cfg["image_size"] % cfg["patch_size"]:
        raise ExportError("--image-size must be a multiple of --patch-size")
    vocab = merges = None
    if getattr(args, "bpe", None) or getattr(args, "vocab_given", False):
        vocab, merges, _ = _tokenizer(Source(None, "", None, {}), args, cfg["context_length"])
    else:
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + [BOS, EOS]
        merges = []
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.1):
        return torch.randn(*shape, generator=g) * std

    W, Wt, E = cfg["vision_width"], cfg["text_width"], cfg["embed_dim"]
    P, grid = cfg["patch_size"], cfg["image_size"] // cfg["patch_size"]
    sd = {
        "visual.conv1.weight": rnd(W, 3, P, P, std=0.2),
        "visual.class_embedding": rnd(W, std=1.0),
        "visual.positional_embedding": rnd(grid * grid + 1, W, std=0.5),
        "visual.proj": rnd(W, E, std=W ** -0.5),
        "token_embedding.weight": rnd(len(vocab), Wt, std=0.5),
        "positional_embedding": rnd(cfg["context_length"], Wt, std=0.5),
        "text_projection": rnd(Wt, E, std=Wt ** -0.5),
        "logit_scale": torch.tensor(float(np.log(1 / 0.07))),
    }
    for name, width in (("visual.ln_pre", W), ("visual.ln_post", W), ("ln_final", Wt)):
        sd[name + ".weight"] = torch.rand(width, generator=g) + 0.5
        sd[name + ".bias"] = rnd(width, std=0.2)
    for prefix, width, layers in (("visual.transformer.", W, cfg["vision_layers"]),
                                  ("transformer.", Wt, cfg["text_layers"])):
        for i in range(layers):
            p = f"{prefix}resblocks.{i}."
            sd[p + "attn.in_proj_weight"] = rnd(3 * width, width, std=width ** -0.5)
            sd[p + "attn.in_proj_bias"] = rnd(3 * width, std=0.1)
            sd[p + "attn.out_proj.weight"] = rnd(width, width, std=width ** -0.5)
            sd[p + "attn.out_proj.bias"] = rnd(width, std=0.1)
            sd[p + "mlp.c_fc.weight"] = rnd(4 * width, width, std=width ** -0.5)
            sd[p + "mlp.c_fc.bias"] = rnd(4 * width, std=0.1)
            sd[p + "mlp.c_proj.weight"] = rnd(width, 4 * width, std=(4 * width) ** -0.5)
            sd[p + "mlp.c_proj.bias"] = rnd(width, std=0.1)
            for ln in ("ln_1", "ln_2"):
                sd[p + ln + ".weight"] = torch.rand(width, generator=g) + 0.5
                sd[p + ln + ".bias"] = rnd(width, std=0.2)
    args.vision_heads = cfg["vision_heads"]
    args.text_heads = cfg["text_heads"]
    return Source(path=None, description=f"random OpenAI-layout CLIP ({cfg}, seed {seed})",
                  sha256=None, state_dict=sd, vocab=vocab, tokenizer_config={"merges": merges})


# ---- conversion ----------------------------------------------------------------------------------

def _shape(state: dict, name: str, rank: int | None = None) -> tuple[int, ...]:
    if name not in state:
        raise ExportError(f"tensor {name} is missing from the checkpoint")
    shape = tuple(int(v) for v in state[name].shape)
    if rank is not None and len(shape) != rank:
        raise ExportError(f"tensor {name} has shape {list(shape)}, expected rank {rank}")
    return shape


def _count(state: dict, fmt: str) -> int:
    n = 0
    while fmt.format(n) in state:
        n += 1
    return n


def _heads(width: int, given: int | None, what: str) -> int:
    heads = given or max(1, width // 64)
    if width % heads:
        raise ExportError(f"{what} width {width} is not a multiple of {heads} heads")
    return heads


def _square_grid(tokens: int, name: str) -> int:
    grid = int(round((tokens - 1) ** 0.5))
    if tokens < 2 or grid * grid != tokens - 1:
        raise ExportError(f"tensor {name} has {tokens} positions, expected 1 + a square")
    return grid


def _convert_openai(state: dict, args):
    """OpenAI / open_clip names -> canonical tensors and config."""
    if "visual.layer1.0.conv1.weight" in state or "visual.attnpool.positional_embedding" in state:
        raise ExportError("this is a ResNet CLIP (RN50, ...): only ViT image towers are supported")
    W, c, P, P2 = _shape(state, "visual.conv1.weight", 4)
    if c != 3 or P != P2:
        raise ExportError(f"tensor visual.conv1.weight has shape {[W, c, P, P2]}, "
                          "expected [W, 3, P, P]")
    T = _shape(state, "visual.positional_embedding", 2)[0]
    grid = _square_grid(T, "visual.positional_embedding")
    E = _shape(state, "visual.proj", 2)[1]
    V, Wt = _shape(state, "token_embedding.weight", 2)
    ctx = _shape(state, "positional_embedding", 2)[0]
    vl = _count(state, "visual.transformer.resblocks.{}.ln_1.weight")
    tl = _count(state, "transformer.resblocks.{}.ln_1.weight")
    if vl == 0 or tl == 0:
        raise ExportError("tensor " + ("visual." if vl == 0 else "") +
                          "transformer.resblocks.0.ln_1.weight is missing from the checkpoint")
    vm = _shape(state, "visual.transformer.resblocks.0.mlp.c_fc.weight", 2)[0]
    tm = _shape(state, "transformer.resblocks.0.mlp.c_fc.weight", 2)[0]
    cfg = {"embed_dim": E, "image_size": grid * P, "patch_size": P, "vision_width": W,
           "vision_layers": vl, "vision_heads": _heads(W, getattr(args, "vision_heads", None), "vision"),
           "vision_mlp": vm, "context_length": ctx, "vocab_size": V, "text_width": Wt,
           "text_layers": tl, "text_heads": _heads(Wt, getattr(args, "text_heads", None), "text"),
           "text_mlp": tm, "activation": getattr(args, "activation", None) or "quick_gelu",
           "eps": LAYER_NORM_EPS}
    out = {
        "visual.patch_embed.weight": take_tensor(state, "visual.conv1.weight", (W, 3, P, P)),
        "visual.class_token": take_tensor(state, "visual.class_embedding", (W,)),
        "visual.pos_embed": take_tensor(state, "visual.positional_embedding", (T, W)),
        "visual.proj.weight": np.ascontiguousarray(take_tensor(state, "visual.proj", (W, E)).T),
        "text.token_embed": take_tensor(state, "token_embedding.weight", (V, Wt)),
        "text.pos_embed": take_tensor(state, "positional_embedding", (ctx, Wt)),
        "text.proj.weight": np.ascontiguousarray(take_tensor(state, "text_projection", (Wt, E)).T),
    }
    used = {"visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
            "visual.proj", "token_embedding.weight", "positional_embedding", "text_projection"}
    for new, old, d in (("visual.ln_pre", "visual.ln_pre", W), ("visual.ln_post", "visual.ln_post", W),
                        ("text.ln_final", "ln_final", Wt)):
        for s in ("weight", "bias"):
            out[f"{new}.{s}"] = take_tensor(state, f"{old}.{s}", (d,))
            used.add(f"{old}.{s}")
    for src_prefix, dst_prefix, d, m, n in (("visual.transformer.resblocks.", "visual.layers.", W, vm, vl),
                                            ("transformer.resblocks.", "text.layers.", Wt, tm, tl)):
        for i in range(n):
            src, dst = f"{src_prefix}{i}.", f"{dst_prefix}{i}."
            pairs = [("attn_norm", "ln_1", (d,), (d,)), ("attn.out", "attn.out_proj", (d, d), (d,)),
                     ("mlp_norm", "ln_2", (d,), (d,)), ("mlp.fc1", "mlp.c_fc", (m, d), (m,)),
                     ("mlp.fc2", "mlp.c_proj", (d, m), (d,))]
            for new, old, ws, bs in pairs:
                out[dst + new + ".weight"] = take_tensor(state, src + old + ".weight", ws)
                out[dst + new + ".bias"] = take_tensor(state, src + old + ".bias", bs)
                used |= {src + old + ".weight", src + old + ".bias"}
            out[dst + "attn.qkv.weight"] = take_tensor(state, src + "attn.in_proj_weight", (3 * d, d))
            out[dst + "attn.qkv.bias"] = take_tensor(state, src + "attn.in_proj_bias", (3 * d,))
            used |= {src + "attn.in_proj_weight", src + "attn.in_proj_bias"}
    if "logit_scale" in state:
        out["logit_scale"] = take_tensor(state, "logit_scale", ()).reshape(1)
        used.add("logit_scale")
    if "logit_bias" in state:
        raise ExportError("tensor logit_bias: SigLIP-style models are not CLIP")
    used |= IGNORED | {"attn_mask"}
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise ExportError(f"tensor {extra[0]} is not part of an OpenAI-layout CLIP"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    return out, cfg


def _convert_hf(state: dict, config: dict, args):
    """Hugging Face CLIPModel names -> canonical tensors and config."""
    tc, vc = config.get("text_config") or {}, config.get("vision_config") or {}
    W, c, P, P2 = _shape(state, "vision_model.embeddings.patch_embedding.weight", 4)
    if c != 3 or P != P2:
        raise ExportError("tensor vision_model.embeddings.patch_embedding.weight has shape "
                          f"{[W, c, P, P2]}, expected [W, 3, P, P]")
    T = _shape(state, "vision_model.embeddings.position_embedding.weight", 2)[0]
    grid = _square_grid(T, "vision_model.embeddings.position_embedding.weight")
    E = _shape(state, "visual_projection.weight", 2)[0]
    V, Wt = _shape(state, "text_model.embeddings.token_embedding.weight", 2)
    ctx = _shape(state, "text_model.embeddings.position_embedding.weight", 2)[0]
    vl = _count(state, "vision_model.encoder.layers.{}.layer_norm1.weight")
    tl = _count(state, "text_model.encoder.layers.{}.layer_norm1.weight")
    if vl == 0 or tl == 0:
        raise ExportError("tensor " + ("vision" if vl == 0 else "text") +
                          "_model.encoder.layers.0.layer_norm1.weight is missing")
    vm = _shape(state, "vision_model.encoder.layers.0.mlp.fc1.weight", 2)[0]
    tm = _shape(state, "text_model.encoder.layers.0.mlp.fc1.weight", 2)[0]
    acts = {tc.get("hidden_act", "quick_gelu"), vc.get("hidden_act", "quick_gelu")}
    if len(acts) != 1 or not acts <= {"quick_gelu", "gelu"}:
        raise ExportError(f"config.json: hidden_act {sorted(acts)} is not supported "
                          "(quick_gelu or gelu, the same in both towers)")
    eps = {float(tc.get("layer_norm_eps", LAYER_NORM_EPS)), float(vc.get("layer_norm_eps", LAYER_NORM_EPS))}
    if len(eps) != 1:
        raise ExportError("config.json: the towers' layer_norm_eps differ")
    cfg = {"embed_dim": E, "image_size": grid * P, "patch_size": P, "vision_width": W,
           "vision_layers": vl,
           "vision_heads": _heads(W, getattr(args, "vision_heads", None) or vc.get("num_attention_heads"), "vision"),
           "vision_mlp": vm, "context_length": ctx, "vocab_size": V, "text_width": Wt,
           "text_layers": tl,
           "text_heads": _heads(Wt, getattr(args, "text_heads", None) or tc.get("num_attention_heads"), "text"),
           "text_mlp": tm, "activation": getattr(args, "activation", None) or acts.pop(),
           "eps": eps.pop()}
    ve, te = "vision_model.embeddings.", "text_model.embeddings."
    out = {
        "visual.patch_embed.weight": take_tensor(state, ve + "patch_embedding.weight", (W, 3, P, P)),
        "visual.class_token": take_tensor(state, ve + "class_embedding", (W,)),
        "visual.pos_embed": take_tensor(state, ve + "position_embedding.weight", (T, W)),
        "visual.proj.weight": take_tensor(state, "visual_projection.weight", (E, W)),
        "text.token_embed": take_tensor(state, te + "token_embedding.weight", (V, Wt)),
        "text.pos_embed": take_tensor(state, te + "position_embedding.weight", (ctx, Wt)),
        "text.proj.weight": take_tensor(state, "text_projection.weight", (E, Wt)),
    }
    used = {ve + "patch_embedding.weight", ve + "class_embedding", ve + "position_embedding.weight",
            "visual_projection.weight", te + "token_embedding.weight",
            te + "position_embedding.weight", "text_projection.weight",
            ve + "position_ids", te + "position_ids"}
    # HF spells the vision pre-norm "pre_layrnorm"
    for new, old, d in (("visual.ln_pre", "vision_model.pre_layrnorm", W),
                        ("visual.ln_post", "vision_model.post_layernorm", W),
                        ("text.ln_final", "text_model.final_layer_norm", Wt)):
        for s in ("weight", "bias"):
            out[f"{new}.{s}"] = take_tensor(state, f"{old}.{s}", (d,))
            used.add(f"{old}.{s}")
    for src_prefix, dst_prefix, d, m, n in (("vision_model.encoder.layers.", "visual.layers.", W, vm, vl),
                                            ("text_model.encoder.layers.", "text.layers.", Wt, tm, tl)):
        for i in range(n):
            src, dst = f"{src_prefix}{i}.", f"{dst_prefix}{i}."
            pairs = [("attn_norm", "layer_norm1", (d,), (d,)),
                     ("attn.out", "self_attn.out_proj", (d, d), (d,)),
                     ("mlp_norm", "layer_norm2", (d,), (d,)), ("mlp.fc1", "mlp.fc1", (m, d), (m,)),
                     ("mlp.fc2", "mlp.fc2", (d, m), (d,))]
            for new, old, ws, bs in pairs:
                out[dst + new + ".weight"] = take_tensor(state, src + old + ".weight", ws)
                out[dst + new + ".bias"] = take_tensor(state, src + old + ".bias", bs)
                used |= {src + old + ".weight", src + old + ".bias"}
            qkv_w, qkv_b = [], []
            for x in ("q", "k", "v"):
                name = f"{src}self_attn.{x}_proj"
                qkv_w.append(take_tensor(state, name + ".weight", (d, d)))
                qkv_b.append(take_tensor(state, name + ".bias", (d,)))
                used |= {name + ".weight", name + ".bias"}
            out[dst + "attn.qkv.weight"] = np.ascontiguousarray(np.concatenate(qkv_w, 0))
            out[dst + "attn.qkv.bias"] = np.ascontiguousarray(np.concatenate(qkv_b, 0))
    if "logit_scale" in state:
        out["logit_scale"] = take_tensor(state, "logit_scale", tuple(state["logit_scale"].shape)).reshape(1)
        used.add("logit_scale")
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise ExportError(f"tensor {extra[0]} is not part of a Hugging Face CLIPModel"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    return out, cfg


def is_clip_state(state: dict) -> bool:
    """For `export.py auto`: an OpenAI / open_clip or Hugging Face CLIP state dict."""
    openai = "visual.conv1.weight" in state and "token_embedding.weight" in state
    hf = ("vision_model.embeddings.patch_embedding.weight" in state
          and "text_model.embeddings.token_embedding.weight" in state)
    return openai or hf


def convert(source: Source, args):
    if getattr(args, "preprocess", None):
        raise ExportError("clip records its own preprocessing (profile clip); --preprocess does "
                          "not apply")
    state = {k[len("module."):] if k.startswith("module.") else k: v
             for k, v in source.state_dict.items()}
    if "vision_model.embeddings.patch_embedding.weight" in state:
        out, cfg = _convert_hf(state, source.hf_config or {}, args)
    elif "visual.conv1.weight" in state or "token_embedding.weight" in state:
        out, cfg = _convert_openai(state, args)
    else:
        raise ExportError("tensor visual.conv1.weight (OpenAI / open_clip) or "
                          "vision_model.embeddings.patch_embedding.weight (Hugging Face) is "
                          "missing: is this a CLIP checkpoint?")
    vocab, merges, tok = _tokenizer(source, args, min(cfg["context_length"], 77))
    if len(vocab) != cfg["vocab_size"]:
        raise ExportError(f"the tokenizer has {len(vocab)} tokens but token_embedding has "
                          f"{cfg['vocab_size']} rows")
    S = cfg["image_size"]
    preprocess = {"profile": "clip", "resize": S, "interpolation": "bicubic", "crop": S,
                  "mean": MEAN, "std": STD}
    meta = {"config": json.dumps(cfg), "preprocess": json.dumps(preprocess),
            "tokenizer": json.dumps(tok), "vocab": "\n".join(vocab) + "\n",
            "merges": "\n".join(f"{a} {b}" for a, b in merges) + ("\n" if merges else "")}
    return out, meta
