"""One random-weight model, three engines: the torch module, its ONNX export and the .tern file.

The state dict comes from the exporter's own architecture module (random_source), so Tern's file
is converted exactly as a real checkpoint would be (convert), and the torch model loads the very
same tensors. Parameters that random init leaves constant (LayerNorm gammas of 1, zero biases)
get their own random values first: every layer then has distinct weights, so the ONNX exporter
cannot merge equal initializers, and the agreement check can see a mix-up.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_bert  # noqa: E402
import torch_distilbert  # noqa: E402

IMAGE_ARCHS = ("resnet50", "vit_b_16")
TEXT_ARCHS = ("distilbert", "bert")
UNCASED_VOCAB = os.path.join(ROOT, "data", "vocab", "bert-base-uncased-vocab.txt")
# Benchmark model name -> (exporter ARCH, exporter arguments). bert: bert-base-uncased's shape
# (12 x 768, the bge-base / e5-base shape); minilm_l6: all-MiniLM-L6-v2's (6 x 384, 12 heads,
# FFN 1536; bge-small / e5-small have 12 such layers).
BENCH_MODELS = {
    "resnet50": ("resnet50", []),
    "vit_b_16": ("vit_b_16", []),
    "distilbert": ("distilbert", []),
    "bert": ("bert", ["--vocab", UNCASED_VOCAB]),
    "minilm_l6": ("bert", ["--hidden-size", "384", "--layers", "6", "--heads", "12",
                           "--intermediate", "1536", "--vocab", UNCASED_VOCAB]),
}


@dataclass
class BenchModel:
    arch: str
    module: nn.Module                   # eval mode; image: (B,3,S,S) -> output; text: ids (B,T)
    tern_path: str
    config: dict                        # the .tern file's config
    image_size: int = 224
    vocab: list[str] | None = None
    onnx_paths: dict = field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        return self.arch in TEXT_ARCHS

    def make_input(self, batch: int, seq_len: int, seed: int) -> np.ndarray:
        """Image: N(0, 1) floats (B, 3, S, S). Text: [CLS] random word ids [SEP], int64 (B, T)."""
        rng = np.random.default_rng(seed)
        if not self.is_text:
            s = self.image_size
            return rng.standard_normal((batch, 3, s, s), dtype=np.float32)
        cls, sep = self.vocab.index("[CLS]"), self.vocab.index("[SEP]")
        special = {i for i, t in enumerate(self.vocab) if t.startswith("[") and t.endswith("]")}
        words = np.array([i for i in range(len(self.vocab)) if i not in special], dtype=np.int64)
        ids = rng.choice(words, size=(batch, seq_len))
        ids[:, 0], ids[:, -1] = cls, sep
        return ids

    def torch_output(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).float().numpy()

    def onnx_path(self) -> str:
        """The ONNX export (opset 13+, dynamic batch and sequence axes), made once per model."""
        key = "default"
        if key not in self.onnx_paths:
            path = os.path.splitext(self.tern_path)[0] + ".onnx"
            if self.is_text:
                example = torch.from_numpy(self.make_input(1, 16, 0))
                axes = {"input_ids": {0: "batch", 1: "tokens"}, "output": {0: "batch", 1: "tokens"}}
                names = ["input_ids"]
            else:
                example = torch.from_numpy(self.make_input(1, 0, 0))
                axes = {"pixels": {0: "batch"}, "output": {0: "batch"}}
                names = ["pixels"]
            # With gradients on, nn.MultiheadAttention takes its composite path instead of the
            # fused inference kernel (aten::_native_multi_head_attention), which ONNX cannot export.
            with torch.enable_grad():
                torch.onnx.export(self.module, (example,), path, opset_version=17,
                                  input_names=names, output_names=["output"], dynamic_axes=axes,
                                  do_constant_folding=True)
            self.onnx_paths[key] = path
        return self.onnx_paths[key]


# ---- the torch side of each architecture ---------------------------------------------------------

class ViTEmbedding(nn.Module):
    """torchvision VisionTransformer up to the final LayerNorm, the class token: (B, D), the
    embedding `tern embed` returns (and that Tern's benchmark times). The peers compute every
    token through the last block, as their graphs are written; Tern computes the class token alone
    there (models/transformer_encoder.hpp, keep)."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.vit = vit

    def forward(self, x):
        x = self.vit._process_input(x)                                  # (B, P, D)
        cls = self.vit.class_token.expand(x.shape[0], -1, -1)           # (B, 1, D)
        return self.vit.encoder(torch.cat([cls, x], dim=1))[:, 0]       # (B, D)


def _blocks(state_dict: dict, prefix: str) -> int:
    return 1 + max(int(k[len(prefix):].split(".")[0]) for k in state_dict if k.startswith(prefix))


def torch_resnet(sd: dict) -> nn.Module:
    import torchvision
    layers = [_blocks(sd, f"layer{s}.") for s in range(1, 5)]
    model = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, layers)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or any(not k.startswith("fc.") for k in missing):
        raise RuntimeError(f"resnet state dict: missing {missing}, unexpected {unexpected}")
    model.fc = nn.Identity()                                            # (B, 2048) features
    return model.eval()


def torch_vit(sd: dict, config: dict) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer
    dim, _, patch, _ = sd["conv_proj.weight"].shape
    tokens = sd["encoder.pos_embedding"].shape[1]
    image = patch * int(round((tokens - 1) ** 0.5))
    mlp_key = next(k for k in sd if k.startswith("encoder.layers.encoder_layer_0.mlp.")
                   and k.endswith("weight") and sd[k].shape[1] == dim)
    model = VisionTransformer(image_size=image, patch_size=patch,
                              num_layers=_blocks(sd, "encoder.layers.encoder_layer_"),
                              num_heads=int(config.get("num_heads", 12)), hidden_dim=dim,
                              mlp_dim=sd[mlp_key].shape[0])
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or any(not k.startswith("heads.") for k in missing):
        raise RuntimeError(f"vit state dict: missing {missing}, unexpected {unexpected}")
    return ViTEmbedding(model).eval()


def decorrelate(state_dict: dict, seed: int) -> None:
    """Gives every constant float tensor (ones, zeros) its own random values, in place."""
    g = torch.Generator().manual_seed(seed + 7919)
    for name, t in state_dict.items():
        if not t.is_floating_point() or t.numel() < 2 or not bool((t == t.flatten()[0]).all()):
            continue
        noise = torch.rand(t.shape, generator=g, dtype=torch.float32)
        if name.endswith("running_var"):
            state_dict[name] = t * (0.5 + noise)
        elif name.endswith("weight"):  # a constant weight is a norm's scale: keep it near 1
            state_dict[name] = t + 0.4 * (noise - 0.5)
        else:
            state_dict[name] = t + 0.1 * (noise - 0.5)


def build(name: str, out_dir: str, seed: int = 0, export_args: list[str] | None = None,
          image_size: int | None = None) -> BenchModel:
    """Random weights for benchmark model `name` (BENCH_MODELS) through the exporter, the .tern
    file and the torch module."""
    from weights_tools import export, tern_format

    if name not in BENCH_MODELS:
        raise ValueError(f"unknown benchmark model {name}")
    arch, base_args = BENCH_MODELS[name]
    tern_path = os.path.join(out_dir, f"{name}.tern")
    argv = ([arch, "--random-init", "--seed", str(seed), "-o", tern_path] + base_args
            + list(export_args or []))
    module, args = export.parse_args(argv)
    source = module.random_source(args.seed, args)
    decorrelate(source.state_dict, seed)
    tensors, metadata = module.convert(source, args)
    export.validate(arch, tensors, metadata)
    metadata = dict(metadata)
    metadata.update({"format": tern_format.FORMAT, "format_version": str(tern_format.FORMAT_VERSION),
                     "architecture": arch, "source": export.source_metadata(source, args)})
    tern_format.write_tern(tern_path, tensors, metadata, dtype="f32")
    config = json.loads(metadata["config"])

    sd = source.state_dict
    if arch == "resnet50":
        return BenchModel(arch, torch_resnet(sd), tern_path, config, image_size or 224)
    if arch == "vit_b_16":
        torch_module = torch_vit(sd, config)
        size = torch_module.vit.image_size
        if image_size not in (None, size):
            raise ValueError(f"vit_b_16 takes {size}x{size} images, not {image_size}")
        return BenchModel(arch, torch_module, tern_path, config, size)
    if arch == "distilbert":
        torch_module = torch_distilbert.from_state_dict(sd, source.hf_config)
        vocab = source.vocab or metadata["vocab"].split("\n")
        return BenchModel(arch, torch_module, tern_path, config, vocab=vocab)
    if arch == "bert":
        torch_module = torch_bert.from_state_dict(sd, source.hf_config)
        return BenchModel(arch, torch_module, tern_path, config, vocab=source.vocab)
    raise ValueError(f"unknown architecture {arch}")
