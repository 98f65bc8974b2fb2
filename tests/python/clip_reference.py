"""References for the CLIP tests: OpenAI's tokenizer algorithm, a BPE trainer for test vocabularies,
and CLIP forwards from torch.nn modules in OpenAI's and in Hugging Face's checkpoint layouts.

Written here from the published algorithms (OpenAI's simple_tokenizer.py and model.py, Hugging
Face's modeling_clip.py), not imported: neither package is installed. `ftfy` is not available, so
the tokenizer reference skips ftfy.fix_text as Tern does.
"""

from __future__ import annotations

import gzip
import html
import json
import os
from collections import Counter

import regex
import torch
from torch import nn

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|"""
                    r"""[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)


def bytes_to_unicode() -> dict[int, str]:
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


def basic_clean(text: str) -> str:
    # OpenAI: ftfy.fix_text(text) first (not available)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    text = regex.sub(r"\s+", " ", text)
    return text.strip()


class SimpleTokenizer:
    """OpenAI's simple_tokenizer.SimpleTokenizer, from a merges list."""

    def __init__(self, merges: list[tuple[str, str]]):
        self.byte_encoder = bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for merge in merges:
            vocab.append("".join(merge))
        vocab.extend([BOS, EOS])
        self.vocab = vocab
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {BOS: BOS, EOS: EOS}

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in regex.findall(PAT, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return bpe_tokens

    def tokenize(self, text: str, context_length: int = 77, truncate: bool = False) -> list[int]:
        """clip.tokenize for one text, without the padding."""
        tokens = [self.encoder[BOS]] + self.encode(text) + [self.encoder[EOS]]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = self.encoder[EOS]
        return tokens


def train_merges(corpus: list[str], count: int) -> list[tuple[str, str]]:
    """Greedy BPE training on the pre-split, byte-encoded words of `corpus` (the most frequent pair
    first, ties by first appearance), so the merges resemble a real CLIP file's."""
    enc = bytes_to_unicode()
    words = Counter()
    for text in corpus:
        text = whitespace_clean(basic_clean(text)).lower()
        for token in regex.findall(PAT, text):
            if token in (BOS, EOS):
                continue
            chars = "".join(enc[b] for b in token.encode("utf-8"))
            words[tuple(chars[:-1]) + (chars[-1] + "</w>",)] += 1
    merges = []
    words = dict(words)
    for _ in range(count):
        pairs = Counter()
        for w, n in words.items():
            for i in range(len(w) - 1):
                pairs[(w[i], w[i + 1])] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: kv[1])[0]
        merges.append(best)
        new_words = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    return merges


def write_bpe_gz(path: str, merges: list[tuple[str, str]]) -> None:
    """OpenAI's bpe_simple_vocab_16e6.txt.gz format: a version line, then a merge a line."""
    with gzip.open(path, "wb") as f:
        f.write(("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges)).encode("utf-8"))


def write_hf_tokenizer(directory: str, tok: SimpleTokenizer, merges) -> None:
    """Hugging Face's vocab.json + merges.txt for the same vocabulary."""
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def write_hf_tokenizer_json(directory: str, tok: SimpleTokenizer, merges) -> None:
    """tokenizer.json + tokenizer_config.json as Hugging Face ships them for openai/clip-vit-*
    (NFC, whitespace runs -> " ", lowercase; CLIP's split pattern; byte-level; BPE with </w>;
    <|startoftext|> ... <|endoftext|>)."""
    bos, eos = tok.encoder[BOS], tok.encoder[EOS]
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False,  # noqa
                            "rstrip": False, "normalized": True, "special": True}
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(bos, BOS), special(eos, EOS)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PAT.pattern}, "behavior": "Removed",
             "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOS, eos], "cls": [BOS, bos],
                           "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": EOS,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                  "fuse_unk": False, "byte_fallback": False, "vocab": tok.encoder,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "bos_token": BOS, "eos_token": EOS,
                   "unk_token": EOS, "pad_token": EOS, "model_max_length": 77,
                   "do_lower_case": True}, f)


# ---- OpenAI layout (clip/model.py) ---------------------------------------------------------------

class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, act: str, attn_mask=None):
        super().__init__()
        from collections import OrderedDict
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * 4)),
            ("gelu", QuickGELU() if act == "quick_gelu" else nn.GELU()),
            ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = nn.LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x):
        mask = self.attn_mask.to(dtype=x.dtype) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, act, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, act, attn_mask)
                                         for _ in range(layers)])

    def forward(self, x, upto=None):
        for i, blk in enumerate(self.resblocks):
            if upto is not None and i >= upto:
                break
            x = blk(x)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, act):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def tokens(self, x, upto=None):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2), upto).permute(1, 0, 2)
        return x

    def forward(self, x):
        x = self.ln_post(self.tokens(x)[:, 0, :])
        return x @ self.proj


class OpenAICLIP(nn.Module):
    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width, patch_size,
                 context_length, vocab_size, transformer_width, transformer_heads,
                 transformer_layers, act="quick_gelu"):
        super().__init__()
        self.context_length = context_length
        self.visual = VisionTransformer(image_resolution, patch_size, vision_width, vision_layers,
                                        vision_width // 64 or 1, embed_dim, act)
        mask = torch.empty(context_length, context_length).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads,
                                       act, attn_mask=mask)
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, transformer_width) * .5)
        self.ln_final = nn.LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.randn(transformer_width, embed_dim)
                                            * transformer_width ** -0.5)
        self.logit_scale = nn.Parameter(torch.ones([]) * 4.2)

    def text_tokens(self, text, upto=None):
        """text [N, 77] (padded with 0, as clip.tokenize does)."""
        x = self.token_embedding(text) + self.positional_embedding
        return self.transformer(x.permute(1, 0, 2), upto).permute(1, 0, 2)

    def encode_text(self, text):
        x = self.ln_final(self.text_tokens(text))
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def encode_image(self, image):
        return self.visual(image)

    def forward(self, image, text):  # what torch.jit.trace records for the TorchScript archive
        return self.encode_image(image), self.encode_text(text)


def randomise(module: nn.Module, seed: int) -> None:
    """LayerNorm weights in [0.5, 1.5), biases non-zero, linear biases non-zero: every parameter
    matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if isinstance(m, nn.MultiheadAttention):
                m.in_proj_bias.copy_(torch.randn(m.in_proj_bias.shape, generator=g) * 0.1)


# ---- Hugging Face layout (transformers/models/clip/modeling_clip.py) -----------------------------

class HFAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x, causal):
        b, t, d = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2) * self.head_dim ** -0.5
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        w = q @ k.transpose(-1, -2)
        if causal:
            w = w + torch.full((t, t), float("-inf")).triu(1)
        o = torch.softmax(w, dim=-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(b, t, d))


class HFMLP(nn.Module):
    def __init__(self, dim, hidden, act):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.act = QuickGELU() if act == "quick_gelu" else nn.GELU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class HFLayer(nn.Module):
    def __init__(self, dim, heads, hidden, act, eps):
        super().__init__()
        self.self_attn = HFAttention(dim, heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = HFMLP(dim, hidden, act)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, causal):
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp(self.layer_norm2(x))


class HFEncoder(nn.Module):
    def __init__(self, n, dim, heads, hidden, act, eps):
        super().__init__()
        self.layers = nn.ModuleList([HFLayer(dim, heads, hidden, act, eps) for _ in range(n)])

    def forward(self, x, causal):
        for layer in self.layers:
            x = layer(x, causal)
        return x


class HFVisionEmbeddings(nn.Module):
    def __init__(self, dim, image_size, patch):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.randn(dim))
        self.patch_embedding = nn.Conv2d(3, dim, patch, patch, bias=False)
        self.position_embedding = nn.Embedding((image_size // patch) ** 2 + 1, dim)

    def forward(self, x):
        p = self.patch_embedding(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        return torch.cat([cls, p], 1) + self.position_embedding.weight


class HFVisionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = HFVisionEmbeddings(c["hidden_size"], c["image_size"], c["patch_size"])
        self.pre_layrnorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.encoder = HFEncoder(c["num_hidden_layers"], c["hidden_size"],
                                 c["num_attention_heads"], c["intermediate_size"], c["hidden_act"],
                                 c["layer_norm_eps"])
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        h = self.encoder(self.pre_layrnorm(self.embeddings(x)), causal=False)
        return self.post_layernorm(h[:, 0])


class HFTextEmbeddings(nn.Module):
    def __init__(self, vocab, dim, positions):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(positions, dim)

    def forward(self, ids):
        return self.token_embedding(ids) + self.position_embedding.weight[: ids.shape[1]]


class HFTextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = HFTextEmbeddings(c["vocab_size"], c["hidden_size"],
                                           c["max_position_embeddings"])
        self.encoder = HFEncoder(c["num_hidden_layers"], c["hidden_size"],
                                 c["num_attention_heads"], c["intermediate_size"], c["hidden_act"],
                                 c["layer_norm_eps"])
        self.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, ids):
        h = self.final_layer_norm(self.encoder(self.embeddings(ids), causal=True))
        # eos_token_id == 2 (the legacy configs): the highest id, as OpenAI
        return h[torch.arange(h.shape[0]), ids.argmax(dim=-1)]


class HFCLIPModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.text_model = HFTextModel(config["text_config"])
        self.vision_model = HFVisionModel(config["vision_config"])
        e = config["projection_dim"]
        self.visual_projection = nn.Linear(config["vision_config"]["hidden_size"], e, bias=False)
        self.text_projection = nn.Linear(config["text_config"]["hidden_size"], e, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))

    def get_image_features(self, x):
        return self.visual_projection(self.vision_model(x))

    def get_text_features(self, ids):
        return self.text_projection(self.text_model(ids))
