"""`export.py auto SOURCE`: the architecture, decided from the source itself.

- A Hugging Face directory (or a sentence-transformers directory's Transformer): config.json
  `model_type`, else `architectures` (BertModel, BertForMaskedLM, DistilBertModel, ...).
- A state-dict file: its key names (torchvision ResNet / VisionTransformer, HF BERT / DistilBERT
  with or without their `bert.` / `distilbert.` prefixes; a DataParallel `module.` prefix).
Returns the ARCH name and the architecture options the source implies (a ResNet's block counts).
"""

from __future__ import annotations

import re

from weights_tools.sources import ExportError, Source

MODEL_TYPES = {"bert": "bert", "distilbert": "distilbert"}
ARCH_PREFIXES = (("DistilBert", "distilbert"), ("Bert", "bert"))


def _from_config(hc: dict, where: str) -> str:
    model_type = hc.get("model_type")
    if isinstance(model_type, str):
        if model_type in MODEL_TYPES:
            return MODEL_TYPES[model_type]
        raise ExportError(f"{where}: model_type {model_type!r} is not an architecture Tern has "
                          f"(text: {', '.join(MODEL_TYPES)})")
    archs = hc.get("architectures")
    if isinstance(archs, list):
        for name in archs:
            for prefix, arch in ARCH_PREFIXES:
                if isinstance(name, str) and name.startswith(prefix):
                    return arch
    raise ExportError(f"{where}: neither model_type nor architectures names bert or distilbert")


def _resnet_layers(keys: set[str]) -> str | None:
    counts = []
    for stage in range(1, 5):
        n = 0
        while f"layer{stage}.{n}.conv1.weight" in keys:
            n += 1
        counts.append(n)
    if min(counts) == 0:
        raise ExportError("the checkpoint looks like a ResNet (conv1.weight, bn1.*) but lacks "
                          f"blocks in some stage (blocks per stage: {counts})")
    return None if counts == [3, 4, 6, 3] else ",".join(map(str, counts))


def detect(source: Source) -> tuple[str, dict]:
    """(ARCH, {option: value}) for this source; ExportError when it is none Tern knows."""
    if source.hf_config is not None:
        return _from_config(source.hf_config, "config.json"), {}
    keys = {k[len("module."):] if k.startswith("module.") else k for k in source.state_dict}
    if "conv_proj.weight" in keys and "encoder.pos_embedding" in keys:
        return "vit_b_16", {}
    if "conv1.weight" in keys and "bn1.weight" in keys and "layer1.0.conv1.weight" in keys:
        layers = _resnet_layers(keys)
        return "resnet50", ({"layers": layers} if layers else {})
    bare = {re.sub(r"^(bert|distilbert)\.", "", k) for k in keys}
    if "encoder.layer.0.attention.self.query.weight" in bare:
        return "bert", {}
    if "transformer.layer.0.attention.q_lin.weight" in bare:
        return "distilbert", {}
    sample = ", ".join(sorted(keys)[:3])
    raise ExportError(f"cannot tell the architecture of {source.path}: its tensor names ({sample}, "
                      "...) are not those of a torchvision ResNet / VisionTransformer or a Hugging "
                      "Face BERT / DistilBERT")
