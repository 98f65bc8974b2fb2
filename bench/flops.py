"""FLOPs of one forward pass (1 MAC = 2 FLOP), the same count `tern bench` makes in C++.

Convolutions, linear layers and the two attention matmuls; elementwise work is left out, as in
the published figures this reproduces (`python3 bench/flops.py` checks them):
ResNet50 at 224: 4.09 GMAC; ViT-B/16 at 224: 17.56 GMAC; DistilBERT at 128 tokens: 5.59 GMAC.
"""

from __future__ import annotations


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def resnet_macs(h: int, w: int, layers=(3, 4, 6, 3), width=64, expansion=4, stem=64) -> float:
    """torchvision ResNet v1.5 (stride on the 3x3 conv) with bottleneck blocks, fc excluded."""
    h, w = _conv_out(h, 7, 2, 3), _conv_out(w, 7, 2, 3)
    macs = h * w * stem * 3 * 49
    h, w = _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)  # max pool
    c_in = stem
    for s, blocks in enumerate(layers):
        planes = width << s
        out = planes * expansion
        for b in range(blocks):
            stride = 2 if s > 0 and b == 0 else 1
            h2, w2 = _conv_out(h, 3, stride, 1), _conv_out(w, 3, stride, 1)
            macs += h * w * c_in * planes + h2 * w2 * planes * planes * 9 + h2 * w2 * planes * out
            if b == 0:
                macs += h2 * w2 * c_in * out
            h, w, c_in = h2, w2, out
    return float(macs)


def encoder_block_macs(tokens: int, dim: int, ffn: int) -> float:
    """q, k, v, out projections + FFN + scores and weighted values (T*T*D each, all heads)."""
    return float(tokens * (4 * dim * dim + 2 * dim * ffn) + 2 * tokens * tokens * dim)


def vit_macs(image_size=224, patch_size=16, num_layers=12, hidden_dim=768, mlp_dim=3072) -> float:
    patches = (image_size // patch_size) ** 2
    return (patches * hidden_dim * 3 * patch_size * patch_size
            + num_layers * encoder_block_macs(patches + 1, hidden_dim, mlp_dim))


def distilbert_macs(seq_len=128, n_layers=6, dim=768, hidden_dim=3072) -> float:
    return n_layers * encoder_block_macs(seq_len, dim, hidden_dim)


def forward_flops(arch: str, config: dict, batch: int, seq_len: int = 0, image_size: int = 224):
    """From a .tern file's config (the JSON the exporter writes)."""
    if arch == "resnet50":
        macs = resnet_macs(image_size, image_size, tuple(config.get("layers", (3, 4, 6, 3))),
                           config.get("width", 64), config.get("expansion", 4))
    elif arch == "vit_b_16":
        macs = vit_macs(image_size, config["patch_size"], config["num_layers"],
                        config["hidden_dim"], config["mlp_dim"])
    elif arch == "distilbert":
        macs = distilbert_macs(seq_len, config["n_layers"], config["dim"], config["hidden_dim"])
    elif arch == "bert":  # the embeddings' adds and LayerNorm are not counted, as for distilbert
        macs = config["num_hidden_layers"] * encoder_block_macs(
            seq_len, config["hidden_size"], config["intermediate_size"])
    else:
        raise ValueError(f"no FLOP count for {arch}")
    return 2.0 * macs * batch


if __name__ == "__main__":
    for name, got, want in (("ResNet50 224", resnet_macs(224, 224), 4.09e9),
                            ("ViT-B/16 224", vit_macs(), 17.56e9),
                            ("DistilBERT 128", distilbert_macs(), 5.59e9)):
        print(f"{name}: {got / 1e9:.3f} GMAC (published {want / 1e9:.2f})")
        assert abs(got - want) < 0.005e9, name
