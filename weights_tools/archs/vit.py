"""ViT (torchvision VisionTransformer: vit_b_16, and other sizes inferred from the tensor shapes).

Accepts torchvision state dicts with either MLP naming (mlp.0 / mlp.3, or the older
mlp.linear_1 / mlp.linear_2); a `module.` prefix is stripped. image_size, patch_size, num_layers,
hidden_dim and mlp_dim come from the shapes, num_heads from the width (torchvision's sizes:
768 -> 12, 1024 -> 16, 1280 -> 16) or --heads, so ViT-B/32 and ViT-L/16 convert too. The
classification head is dropped unless --keep-head. Canonical names: docs/FORMAT.md, "vit_b_16".
"""

from __future__ import annotations

import json
import math

import numpy as np

from weights_tools.sources import ExportError, Source, take_tensor

LAYER_NORM_EPS = 1e-6  # torchvision's norm_layer default for VisionTransformer
HEADS_BY_WIDTH = {768: 12, 1024: 16, 1280: 16}
# vit_b_16
BASE = {"image_size": 224, "patch_size": 16, "num_layers": 12, "num_heads": 12,
        "hidden_dim": 768, "mlp_dim": 3072}
_MEAN = [0.485, 0.456, 0.406]
_STD = [0.229, 0.224, 0.225]
PROFILES = {  # PRODUCT.md "Preprocessing"; resize / crop for 224-pixel models
    "torchvision-v1": {"resize": 256, "interpolation": "bilinear"},
    "torchvision-v2": {"resize": 232, "interpolation": "bilinear"},
    "timm": {"resize": 235, "interpolation": "bicubic"},
}


def add_arguments(parser) -> None:
    g = parser.add_argument_group("vit (--random-init sizes; default vit_b_16)")
    g.add_argument("--layers", type=int, default=None, help="encoder blocks (12)")
    g.add_argument("--heads", type=int, default=None,
                   help="attention heads (12; also overrides the width-based guess on conversion)")
    g.add_argument("--hidden-dim", type=int, default=None, help="model width (768)")
    g.add_argument("--mlp-dim", type=int, default=None, help="MLP width (3072)")
    g.add_argument("--patch-size", type=int, default=None, help="patch size (16)")
    g.add_argument("--image-size", type=int, default=None, help="input size (224)")


def preprocess_json(profile: str | None, image_size: int) -> str:
    name = profile or "torchvision-v1"
    if name not in PROFILES:
        raise ExportError(f"unknown preprocess profile '{name}' (known: {', '.join(PROFILES)})")
    p = PROFILES[name]
    # A model at another resolution keeps the profile's resize / crop ratio.
    resize = p["resize"] if image_size == 224 else int(round(p["resize"] * image_size / 224))
    return json.dumps({"profile": name, "resize": resize, "interpolation": p["interpolation"],
                       "crop": image_size, "mean": _MEAN, "std": _STD})


def random_source(seed: int, args) -> Source:
    """torchvision VisionTransformer with random weights. torchvision initialises the class token
    to zeros, the position embedding with std 0.02 and LayerNorms to 1 / 0; those are randomised
    here so that every parameter matters in the parity tests."""
    import torch
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    cfg = dict(BASE)
    for key, arg in (("num_layers", "layers"), ("num_heads", "heads"), ("hidden_dim", "hidden_dim"),
                     ("mlp_dim", "mlp_dim"), ("patch_size", "patch_size"),
                     ("image_size", "image_size")):
        value = getattr(args, arg, None)
        if value is not None:
            if value < 1:
                raise ExportError(f"--{arg.replace('_', '-')} must be >= 1, got {value}")
            cfg[key] = value
    if cfg["hidden_dim"] % cfg["num_heads"]:
        raise ExportError(f"--hidden-dim {cfg['hidden_dim']} is not a multiple of --heads "
                          f"{cfg['num_heads']}")
    if cfg["image_size"] % cfg["patch_size"]:
        raise ExportError(f"--image-size {cfg['image_size']} is not a multiple of --patch-size "
                          f"{cfg['patch_size']}")
    model = VisionTransformer(**cfg)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        model.class_token.copy_(torch.randn(model.class_token.shape, generator=g))
        model.encoder.pos_embedding.copy_(
            torch.randn(model.encoder.pos_embedding.shape, generator=g) * 0.5)
        # torchvision zero-initialises the head; give it values so --keep-head logits are tested.
        model.heads.head.weight.copy_(torch.randn(model.heads.head.weight.shape, generator=g) * 0.05)
        model.heads.head.bias.copy_(torch.randn(model.heads.head.bias.shape, generator=g) * 0.1)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Source(path=None, description=f"random torchvision VisionTransformer ({cfg}, seed {seed})",
                  sha256=None, state_dict=state)


def _shape(state: dict, name: str, rank: int) -> tuple[int, ...]:
    if name not in state:
        raise ExportError(f"tensor {name} is missing from the checkpoint (is this a torchvision "
                          "VisionTransformer?)")
    shape = tuple(int(v) for v in state[name].shape)
    if len(shape) != rank:
        raise ExportError(f"tensor {name} has shape {list(shape)}, expected rank {rank}")
    return shape


def _config(state: dict, heads: int | None) -> dict:
    d, c, p, p2 = _shape(state, "conv_proj.weight", 4)
    if c != 3 or p != p2:
        raise ExportError(f"tensor conv_proj.weight has shape {[d, c, p, p2]}, expected [D, 3, P, P]")
    tokens = _shape(state, "encoder.pos_embedding", 3)[1]
    grid = math.isqrt(max(tokens - 1, 0))
    if tokens < 2 or grid * grid != tokens - 1:
        raise ExportError(f"tensor encoder.pos_embedding has {tokens} tokens, expected 1 + a square")
    layers = 0
    while f"encoder.layers.encoder_layer_{layers}.ln_1.weight" in state:
        layers += 1
    if layers == 0:
        raise ExportError("tensor encoder.layers.encoder_layer_0.ln_1.weight is missing")
    fc1 = _mlp_names(state, 0)[0]
    mlp_dim = _shape(state, fc1 + ".weight", 2)[0]
    num_heads = heads or HEADS_BY_WIDTH.get(d, max(1, d // 64))
    if d % num_heads:
        raise ExportError(f"hidden_dim {d} is not a multiple of num_heads {num_heads} (--heads)")
    return {"image_size": grid * p, "patch_size": p, "num_layers": layers, "num_heads": num_heads,
            "hidden_dim": d, "mlp_dim": mlp_dim, "eps": LAYER_NORM_EPS}


def _mlp_names(state: dict, i: int) -> tuple[str, str]:
    p = f"encoder.layers.encoder_layer_{i}.mlp."
    if p + "0.weight" in state:
        return p + "0", p + "3"
    if p + "linear_1.weight" in state:
        return p + "linear_1", p + "linear_2"
    raise ExportError(f"tensor {p}0.weight (or {p}linear_1.weight) is missing from the checkpoint")


def convert(source: Source, args):
    state = {k[len("module."):] if k.startswith("module.") else k: v
             for k, v in source.state_dict.items()}
    cfg = _config(state, getattr(args, "heads", None))
    d, m, p = cfg["hidden_dim"], cfg["mlp_dim"], cfg["patch_size"]
    tokens = 1 + (cfg["image_size"] // p) ** 2
    out = {
        "patch_embed.weight": take_tensor(state, "conv_proj.weight", (d, 3, p, p)),
        "patch_embed.bias": take_tensor(state, "conv_proj.bias", (d,)),
        "class_token": take_tensor(state, "class_token", (1, 1, d)).reshape(d),
        "pos_embed": take_tensor(state, "encoder.pos_embedding", (1, tokens, d)).reshape(tokens, d),
        "norm.weight": take_tensor(state, "encoder.ln.weight", (d,)),
        "norm.bias": take_tensor(state, "encoder.ln.bias", (d,)),
    }
    used = {"conv_proj.weight", "conv_proj.bias", "class_token", "encoder.pos_embedding",
            "encoder.ln.weight", "encoder.ln.bias"}
    for i in range(cfg["num_layers"]):
        src, dst = f"encoder.layers.encoder_layer_{i}.", f"layers.{i}."
        fc1, fc2 = _mlp_names(state, i)
        pairs = [
            (dst + "attn_norm", src + "ln_1", (d,), (d,)),
            (dst + "attn.out", src + "self_attention.out_proj", (d, d), (d,)),
            (dst + "mlp_norm", src + "ln_2", (d,), (d,)),
            (dst + "mlp.fc1", fc1, (m, d), (m,)),
            (dst + "mlp.fc2", fc2, (d, m), (d,)),
        ]
        for new, old, wshape, bshape in pairs:
            out[new + ".weight"] = take_tensor(state, old + ".weight", wshape)
            out[new + ".bias"] = take_tensor(state, old + ".bias", bshape)
            used |= {old + ".weight", old + ".bias"}
        # in_proj is already [q; k; v] rows: the canonical fused layout.
        out[dst + "attn.qkv.weight"] = take_tensor(state, src + "self_attention.in_proj_weight", (3 * d, d))
        out[dst + "attn.qkv.bias"] = take_tensor(state, src + "self_attention.in_proj_bias", (3 * d,))
        used |= {src + "self_attention.in_proj_weight", src + "self_attention.in_proj_bias"}
    heads = sorted(k for k in state if k.startswith("heads."))
    if args.keep_head:
        if "heads.pre_logits.weight" in state:
            raise ExportError("tensor heads.pre_logits.weight: ViTs with a representation layer "
                              "before the head are not supported with --keep-head")
        classes = _shape(state, "heads.head.weight", 2)[0]
        out["head.weight"] = take_tensor(state, "heads.head.weight", (classes, d))
        out["head.bias"] = take_tensor(state, "heads.head.bias", (classes,))
        cfg["num_classes"] = classes
    used |= set(heads)
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise ExportError(f"tensor {extra[0]} is not part of a torchvision VisionTransformer"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    meta = {"config": json.dumps(cfg),
            "preprocess": preprocess_json(args.preprocess, cfg["image_size"])}
    return out, meta
