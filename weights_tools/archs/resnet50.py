"""ResNet50 (torchvision v1.5 / timm resnet50): BatchNorm folded into the convs, fc dropped.

Accepts torchvision and timm state dicts (the same key names; a `module.` prefix from
DataParallel is stripped; `num_batches_tracked` is ignored). Canonical names: docs/FORMAT.md,
"resnet50". Deeper bottleneck ResNets (resnet101/152) convert with --layers 3,4,23,3 etc.
"""

from __future__ import annotations

import json

import numpy as np

from weights_tools.sources import ExportError, Source

BN_EPS = 1e-5
DEFAULT_LAYERS = (3, 4, 6, 3)

# The preprocessing profiles (PRODUCT.md "Preprocessing"); keys as engine/core/image.cpp reads them.
_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]
PROFILES = {
    "torchvision-v1": {"resize": 256, "interpolation": "bilinear"},
    "torchvision-v2": {"resize": 232, "interpolation": "bilinear"},
    "timm": {"resize": 235, "interpolation": "bicubic"},
}


def preprocess_json(profile: str | None) -> str:
    name = profile or "torchvision-v1"
    if name not in PROFILES:
        raise ExportError(f"unknown preprocess profile '{name}' (known: {', '.join(PROFILES)})")
    p = PROFILES[name]
    return json.dumps({"profile": name, "resize": p["resize"], "interpolation": p["interpolation"],
                       "crop": 224, "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD})


def _parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ExportError(f"--layers {text!r}: expected 4 comma-separated block counts") from None
    if len(layers) != 4 or any(n < 1 or n > 256 for n in layers):
        raise ExportError(f"--layers {text!r}: expected 4 block counts in [1, 256]")
    return layers


def add_arguments(parser) -> None:
    parser.add_argument("--layers", default=None, metavar="A,B,C,D",
                        help="resnet50: bottleneck blocks per stage (default 3,4,6,3; "
                             "3,4,23,3 for a resnet101 checkpoint, 3,8,36,3 for resnet152)")


def random_source(seed: int, args) -> Source:
    """torchvision resnet50 with random weights and random BatchNorm statistics and affine
    parameters, so that folding is exercised. torchvision's init keeps activations O(1)."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    layers = _parse_layers(args.layers) if getattr(args, "layers", None) else DEFAULT_LAYERS
    model = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, list(layers))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                # The last BN of a residual branch gets a smaller gamma (torchvision's
                # zero_init_residual idea, not zero): features stay O(10) after 16 blocks instead
                # of growing ~sqrt(2) per block.
                gamma_scale = 0.3 if name.endswith("bn3") else 1.0
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_((torch.rand(c, generator=g) + 0.5) * gamma_scale)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Source(path=None, description=f"random torchvision resnet (layers {layers}, seed {seed})",
                  sha256=None, state_dict=state)


class _Reader:
    """Takes tensors out of a state dict by name, checking shapes; reports what was left over."""

    def __init__(self, state_dict):
        sd = dict(state_dict)
        if sd and all(k.startswith("module.") for k in sd):
            sd = {k[len("module."):]: v for k, v in sd.items()}
        self.sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        self.used: set[str] = set()

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.sd:
            raise ExportError(f"resnet50: missing tensor {name} (expected shape {list(shape)})")
        t = self.sd[name]
        got = tuple(int(d) for d in t.shape)
        if got != tuple(shape):
            raise ExportError(f"resnet50: tensor {name} has shape {list(got)}, expected {list(shape)}")
        self.used.add(name)
        return t.detach().cpu().double().numpy()

    def has(self, name: str) -> bool:
        return name in self.sd

    def unused(self) -> list[str]:
        return sorted(k for k in self.sd if k not in self.used)


def _fold(r: _Reader, conv: str, bn: str, c_in: int, c_out: int, k: int):
    """conv (no bias, or bias) followed by BatchNorm (eval) -> one conv with bias, in float64."""
    w = r.get(f"{conv}.weight", (c_out, c_in, k, k))
    b = r.get(f"{conv}.bias", (c_out,)) if r.has(f"{conv}.bias") else np.zeros(c_out)
    gamma = r.get(f"{bn}.weight", (c_out,))
    beta = r.get(f"{bn}.bias", (c_out,))
    mean = r.get(f"{bn}.running_mean", (c_out,))
    var = r.get(f"{bn}.running_var", (c_out,))
    if np.any(var < 0):
        raise ExportError(f"resnet50: tensor {bn}.running_var has negative entries")
    scale = gamma / np.sqrt(var + BN_EPS)
    w_folded = w * scale[:, None, None, None]
    b_folded = beta + (b - mean) * scale
    return w_folded.astype(np.float32), b_folded.astype(np.float32)


def convert(source: Source, args):
    r = _Reader(source.state_dict)
    layers = _parse_layers(args.layers) if getattr(args, "layers", None) else DEFAULT_LAYERS
    if not r.has("conv1.weight"):
        raise ExportError("resnet50: missing tensor conv1.weight (is this a ResNet checkpoint?)")
    width = int(r.sd["conv1.weight"].shape[0])
    expansion = 4
    tensors: dict[str, np.ndarray] = {}

    def put(name: str, conv: str, bn: str, c_in: int, c_out: int, k: int):
        tensors[f"{name}.weight"], tensors[f"{name}.bias"] = _fold(r, conv, bn, c_in, c_out, k)

    put("conv1", "conv1", "bn1", 3, width, 7)
    in_c = width
    for s, blocks in enumerate(layers):
        planes = width << s
        out_c = planes * expansion
        for i in range(blocks):
            p = f"layer{s + 1}.{i}"
            put(f"{p}.conv1", f"{p}.conv1", f"{p}.bn1", in_c, planes, 1)
            put(f"{p}.conv2", f"{p}.conv2", f"{p}.bn2", planes, planes, 3)
            put(f"{p}.conv3", f"{p}.conv3", f"{p}.bn3", planes, out_c, 1)
            if i == 0:
                put(f"{p}.downsample", f"{p}.downsample.0", f"{p}.downsample.1", in_c, out_c, 1)
            in_c = out_c
    features = in_c
    config = {"layers": list(layers), "width": width, "expansion": expansion, "block": "bottleneck",
              "features": features}
    if r.has("fc.weight"):
        classes = int(r.sd["fc.weight"].shape[0])
        fc_w = r.get("fc.weight", (classes, features))
        fc_b = r.get("fc.bias", (classes,))
        if args.keep_head:
            tensors["fc.weight"] = fc_w.astype(np.float32)
            tensors["fc.bias"] = fc_b.astype(np.float32)
            config["num_classes"] = classes
    elif args.keep_head:
        raise ExportError("resnet50: --keep-head given but the checkpoint has no fc.weight")
    extra = r.unused()
    if extra:
        hint = " (a deeper ResNet? pass --layers)" if any(k.startswith("layer") for k in extra) else ""
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise ExportError(f"resnet50: unexpected tensor {extra[0]}{more} in the checkpoint{hint}")
    metadata = {"config": json.dumps(config), "preprocess": preprocess_json(args.preprocess)}
    return tensors, metadata
