"""tern.Model: a loaded weight file, and the conversions between Python values and Tern's."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, List, Optional, Sequence, Union

import numpy as np

from tern import _tern
from tern._progress import progress_bar

Error = _tern.Error
Error.__module__ = "tern"
Error.__doc__ = """Every failure in Tern, as one line naming the input and the reason.

A bad weight file, an unreadable or unsupported image, invalid UTF-8, a text over the model's
length, a wrong argument: the message is what the ``tern`` command prints after ``error:``.
A subclass of RuntimeError; the process and the model stay usable after it.
"""

# What embed_images takes: a path, encoded JPEG/PNG bytes, a PIL image, or HxWx3 uint8 pixels.
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, "PIL.Image.Image",
                   np.ndarray]
TextInput = Union[str, bytes]

_PATH, _BYTES, _PIXELS = 0, 1, 2


def load(path: Union[str, "os.PathLike[str]"], threads: int = 0,
         isa: Optional[str] = None) -> "Model":
    """Loads a ``.tern`` weight file: ``tern.load("resnet50.tern", threads=2)``.

    Args:
        path: the weight file.
        threads: worker threads of the model's pool; 0 = every core available to the process.
        isa: cap the kernels' instruction set: ``"scalar"``, ``"avx2"`` or ``"avx512"``
            (default: the best the CPU has, or ``$TERN_ISA``).

    Raises:
        tern.Error: missing, unreadable or invalid file; unsupported ISA; negative threads.
    """
    return Model(path, threads=threads, isa=isa)


class Model:
    """A loaded Tern model (ResNet50, ViT-B/16, DistilBERT, ...): images or texts in, float32
    NumPy arrays out, bit-identical to ``tern embed`` with the same inputs and options.

    One Model may be used from several Python threads at once: the GIL is released while Tern
    computes, and the weights are held once however many threads use them. Calls share the
    model's pool of ``threads`` workers; for throughput from many Python threads, load with
    ``threads=1`` (each call then runs on its own thread, in parallel with the others).

    Properties: ``architecture``, ``dim``, ``modalities``, ``max_length``,
    ``default_pooling``, ``layers``, ``threads``, ``isa``, ``path``.
    """

    __slots__ = ("_native", "_path")

    def __init__(self, path: Union[str, "os.PathLike[str]"], threads: int = 0,
                 isa: Optional[str] = None):
        """Same as :func:`tern.load`."""
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise Error(f"model path: expected a str or os.PathLike, got {type(path).__name__}")
        threads = _int_arg("threads", threads)
        if isa is not None and not isinstance(isa, str):
            raise Error(f"isa: expected a str (scalar, avx2, avx512), got {type(isa).__name__}")
        self._path = os.fsdecode(path)
        self._native = _tern.NativeModel.load(os.fsencode(path), threads, isa or "")

    # ---- properties ----------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The weight file this model was loaded from."""
        return self._path

    @property
    def architecture(self) -> str:
        """``"resnet50"``, ``"vit_b_16"``, ``"distilbert"``, ..."""
        return self._native.architecture

    @property
    def dim(self) -> int:
        """Width of one embedding vector (2048 for ResNet50, 768 for ViT-B/16 and DistilBERT)."""
        return self._native.dim

    @property
    def modalities(self) -> tuple:
        """What the model embeds: ``("image",)``, ``("text",)`` or, for CLIP, both."""
        return tuple(name for name, yes in (("image", self._native.is_image_model),
                                            ("text", self._native.is_text_model)) if yes)

    @property
    def max_length(self) -> Optional[int]:
        """Text models: the most tokens one text may have, [CLS] and [SEP] included. Else None."""
        return self._native.max_length if self._native.is_text_model else None

    @property
    def default_pooling(self) -> str:
        """The pooling ``tern embed`` uses without ``--pooling``: ``"mean"`` (ResNet50),
        ``"cls"`` (ViT), ``"none"`` (DistilBERT: one vector per token), or the file's own."""
        return self._native.default_pooling

    @property
    def layers(self) -> tuple:
        """The valid ``layer=`` values, in order (``tern info`` lists them too)."""
        return tuple(self._native.layers)

    @property
    def threads(self) -> int:
        """Threads in the model's pool (the caller's included)."""
        return self._native.threads

    @property
    def isa(self) -> str:
        """The instruction set the model's kernels run: ``"scalar"``, ``"avx2"``, ``"avx512"``."""
        return self._native.isa

    def __repr__(self) -> str:
        return (f"tern.Model({self._path!r}, architecture={self.architecture!r}, dim={self.dim}, "
                f"threads={self.threads}, isa={self.isa!r})")

    # ---- images --------------------------------------------------------------------------------
    def embed_images(self, images: Union[ImageInput, Iterable[ImageInput]],
                     pooling: Optional[str] = None, normalize: bool = False, batch_size: int = 8,
                     *, logits: bool = False, layer: Union[str, int, None] = None,
                     show_progress_bar: Optional[bool] = False) -> Union[np.ndarray, list]:
        """Embeds images; returns float32 arrays that own their memory.

        Args:
            images: one image or a list of them. An image is a path (``str`` or
                ``os.PathLike``, JPEG or PNG), encoded JPEG/PNG ``bytes``, a ``PIL.Image.Image``
                (``convert("RGB")`` is applied) or an ``HxWx3`` ``uint8`` array of RGB pixels; an
                ``NxHxWx3`` array is N images.
            pooling: ``None`` = the file's default (see :attr:`default_pooling`); ``"mean"``,
                ``"cls"``, ``"max"``, ``"none"`` (every token for ViT, the feature map for
                ResNet50), as ``tern embed --pooling``.
            normalize: L2-normalise each output vector.
            batch_size: images per forward pass (the result does not depend on it).
            logits: class scores instead of embeddings (files exported with ``--keep-head``).
            layer: an intermediate output instead of the usual one: one of :attr:`layers`
                (ResNet50 ``"layer3"``; transformers a block number, negative from the end).
            show_progress_bar: True, False, or None (a bar on a terminal for long runs).

        Returns:
            A list of images gives one array ``[N, D]`` (``[N, T, D]`` with ``pooling="none"``);
            a single image gives its own ``[D]`` (or ``[T, D]``).

        Raises:
            tern.Error: naming the input (its path, or ``images[i]``) and the reason.
        """
        single = _is_single_image(images)
        items = [_image_item(x, i) for i, x in enumerate([images] if single else images)]
        batch = _batch_arg(batch_size)
        args = (_pooling_arg(pooling), bool(normalize), batch, bool(logits), _layer_arg(layer))
        if not items:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        bar = progress_bar(len(items), show_progress_bar, "tern: images")
        try:
            for b in range(0, len(items), batch):
                chunk = items[b:b + batch]
                parts.append(self._native.embed_images(chunk, b, not single, *args))
                bar.update(len(chunk))
        finally:
            bar.close()
        return parts[0][0] if single else _join(parts)

    # ---- texts ---------------------------------------------------------------------------------
    def embed_texts(self, texts: Union[TextInput, Iterable[TextInput]],
                    pooling: Optional[str] = None, normalize: bool = False, batch_size: int = 32,
                    max_length: Optional[int] = None, truncate: bool = False,
                    prompt: Optional[str] = None, prompt_text: Optional[str] = None, *,
                    layer: Union[str, int, None] = None,
                    show_progress_bar: Optional[bool] = False) -> Union[np.ndarray, list]:
        """Embeds texts; returns float32 arrays that own their memory.

        Args:
            texts: one text or a list of them (``str``, or ``bytes`` holding UTF-8).
            pooling: ``None`` = the file's default (see :attr:`default_pooling`: ``"none"`` for
                DistilBERT, one vector per token, [CLS] and [SEP] included); ``"cls"``,
                ``"mean"`` (over real tokens), ``"none"``, as ``tern embed --pooling``.
            normalize: L2-normalise each output vector (each token's, unpooled).
            batch_size: texts per forward pass (the result does not depend on it).
            max_length: at most this many tokens per text (default and upper bound: the model's).
            truncate: cut longer texts instead of raising.
            prompt, prompt_text: a prompt by name, or its text, where the file defines prompts.
            layer: an intermediate output: one of :attr:`layers` (a block number; 0 = the
                embeddings, negative counts from the end), as ``tern embed --layer``.
            show_progress_bar: True, False, or None (a bar on a terminal for long runs).

        Returns:
            Pooled: ``[N, D]`` for a list, ``[D]`` for a single text. Unpooled (``"none"``): a
            list of ``[T_i, D]`` arrays for a list, one ``[T, D]`` array for a single text.

        Raises:
            tern.Error: ``text N: <reason>`` (N counts from 1), e.g. invalid UTF-8 with its
            byte offset, or a text longer than ``max_length``.
        """
        single = isinstance(texts, (str, bytes))
        data = [_text_bytes(t, i) for i, t in enumerate([texts] if single else texts)]
        pooled = (self.default_pooling if pooling in (None, "default") else pooling) != "none"
        out = self._embed_texts(data, pooling, normalize, batch_size, max_length, truncate,
                                prompt, prompt_text, layer, show_progress_bar,
                                stack=pooled and not single)
        return out[0] if single else out

    def _embed_texts(self, data: List[bytes], pooling, normalize, batch_size, max_length,
                     truncate, prompt, prompt_text, layer, show_progress_bar, stack: bool):
        batch = _batch_arg(batch_size)
        opts = (_pooling_arg(pooling), bool(normalize), batch,
                0 if max_length is None else _int_arg("max_length", max_length), bool(truncate),
                _layer_arg(layer), _str_arg("prompt", prompt), _str_arg("prompt_text", prompt_text))
        if not data:
            return np.zeros((0, self.dim), np.float32) if stack else []
        parts = []
        bar = progress_bar(len(data), show_progress_bar, "tern: texts")
        try:
            for b in range(0, len(data), batch):
                chunk = data[b:b + batch]
                parts.append(self._embed_text_chunk(chunk, b, stack, opts))
                bar.update(len(chunk))
        finally:
            bar.close()
        return _join(parts) if stack else [a for p in parts for a in p]

    def _embed_text_chunk(self, chunk: List[bytes], first: int, stack: bool, opts: tuple):
        try:
            return self._native.embed_texts(chunk, stack, *opts)
        except Error as e:
            if len(chunk) == 1:
                raise Error(_renumber(str(e), first)) from None
            # Name the failing text by its place in the whole call, as `tern embed` does.
            for j, t in enumerate(chunk):
                try:
                    self._native.embed_texts([t], stack, *opts)
                except Error as e1:
                    raise Error(_renumber(str(e1), first + j)) from None
            raise

    def tokenize(self, texts: Union[TextInput, Iterable[TextInput]], truncate: bool = False,
                 max_length: Optional[int] = None) -> Union[List[int], List[List[int]]]:
        """Token ids, [CLS] and [SEP] included, as ``tern tokenize`` prints them.

        A list of texts gives a list of id lists; a single text its own id list.
        Raises tern.Error (``text N: <reason>``) for invalid UTF-8 or an over-long text.
        """
        single = isinstance(texts, (str, bytes))
        data = [_text_bytes(t, i) for i, t in enumerate([texts] if single else texts)]
        ids = self._native.tokenize(data, bool(truncate),
                                    0 if max_length is None else _int_arg("max_length", max_length))
        return ids[0] if single else ids

    # ---- sentence-transformers -----------------------------------------------------------------
    def encode(self, sentences: Union[Any, Sequence[Any]], prompt_name: Optional[str] = None,
               prompt: Optional[str] = None, batch_size: int = 32,
               show_progress_bar: Optional[bool] = None,
               output_value: Optional[str] = "sentence_embedding", precision: str = "float32",
               convert_to_numpy: bool = True, convert_to_tensor: bool = False,
               device: Optional[str] = None, normalize_embeddings: bool = False):
        """``SentenceTransformer.encode``: one vector per sentence (or image, for image models).

        A ``str`` gives a 1-D array ``[D]``; a list gives ``[N, D]``;
        ``convert_to_numpy=False`` a list of 1-D arrays; ``convert_to_tensor=True`` a torch
        tensor (torch is imported then). Pooling is the file's default, or ``"mean"`` where
        that is ``"none"``. ``output_value="token_embeddings"`` gives one ``[T, D]`` array per
        sentence instead. ``prompt_name`` / ``prompt`` select a prompt defined by the file / give
        its text. A progress bar shows with ``show_progress_bar=True``, or by default on a
        terminal when the call takes a while. ``device`` may only be None or ``"cpu"``,
        ``precision`` only ``"float32"``.
        """
        if device not in (None, "cpu"):
            raise Error(f"device: Tern runs on the CPU, got {device!r}")
        if precision != "float32":
            raise Error(f"precision: only float32 is supported, got {precision!r}")
        if output_value not in ("sentence_embedding", "token_embeddings"):
            raise Error(f"output_value: expected 'sentence_embedding' or 'token_embeddings', "
                        f"got {output_value!r}")
        tokens = output_value == "token_embeddings"
        pooling = self.default_pooling
        if tokens:
            pooling = "none"
        elif pooling == "none":
            pooling = "mean"
        if not isinstance(sentences, (str, bytes, np.ndarray)) and not _is_single_image(sentences):
            sentences = list(sentences)  # may be a generator: looked at below, then embedded
        if self._encodes_images(sentences):
            single = _is_single_image(sentences)
            out = self.embed_images(sentences, pooling=pooling, normalize=normalize_embeddings,
                                    batch_size=batch_size, show_progress_bar=show_progress_bar)
            rows = [out] if single else out
        else:
            single = isinstance(sentences, (str, bytes))
            data = [_text_bytes(t, i) for i, t in enumerate([sentences] if single else sentences)]
            stack = not single and not tokens and (convert_to_numpy or convert_to_tensor)
            rows = self._embed_texts(data, pooling, normalize_embeddings, batch_size, None,
                                     False, prompt_name, prompt, None, show_progress_bar, stack)
        if tokens or not (convert_to_numpy or convert_to_tensor):
            rows = [np.array(r) for r in rows] if isinstance(rows, np.ndarray) else list(rows)
            if convert_to_tensor:
                import torch
                rows = [torch.from_numpy(r) for r in rows]
            return rows[0] if single else rows
        if convert_to_tensor:
            import torch
            rows = torch.from_numpy(np.ascontiguousarray(rows))
        return rows[0] if single else rows

    def get_sentence_embedding_dimension(self) -> int:
        """sentence-transformers' name for :attr:`dim`."""
        return self.dim

    @property
    def max_seq_length(self) -> Optional[int]:
        """sentence-transformers' name for :attr:`max_length`."""
        return self.max_length

    def _encodes_images(self, sentences: Any) -> bool:
        """encode's input kind: images for image models; texts for text models; for models of
        both (CLIP) texts when the inputs are ``str``, images otherwise (paths as
        ``os.PathLike``, encoded ``bytes``, PIL images, arrays), as sentence-transformers' CLIP
        models decide between strings and images."""
        if not self._native.is_text_model:
            return True
        if not self._native.is_image_model:
            return False
        first = sentences if isinstance(sentences, (str, bytes)) or _is_single_image(sentences) \
            else (sentences[0] if len(sentences) else "")
        return not isinstance(first, str)

    def similarity(self, a: Any, b: Any) -> np.ndarray:
        """Cosine similarity matrix ``[len(a), len(b)]`` of two sets of embeddings (see
        :func:`tern.similarity`)."""
        return similarity(a, b)


def similarity(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``: float32 ``[Na, Nb]``.

    ``a`` and ``b`` are ``[N, D]`` or ``[D]`` arrays (or anything ``np.asarray`` takes, such as
    the results of :meth:`Model.encode`); a zero vector has similarity 0 with everything.
    """
    x, y = _rows("a", a), _rows("b", b)
    if x.shape[1] != y.shape[1]:
        raise Error(f"similarity: a has {x.shape[1]} columns and b has {y.shape[1]}")
    x = _unit_rows(x)
    y = _unit_rows(y)
    return (x @ y.T).astype(np.float32)


# ---- conversions ---------------------------------------------------------------------------------
def _rows(name: str, v: Any) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise Error(f"similarity: {name} is not a numeric array ({e})") from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise Error(f"similarity: {name} must be [N, D] or [D], got shape {tuple(a.shape)}")
    return a


def _unit_rows(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def _join(parts: list):
    """Chunks' results as one array when each is an array of the same trailing shape."""
    if all(isinstance(p, np.ndarray) for p in parts):
        if len(parts) == 1:
            return parts[0]
        if len({p.shape[1:] for p in parts}) == 1:
            return np.concatenate(parts)
    rows = []
    for p in parts:
        rows.extend(list(p) if isinstance(p, list) else [np.array(r) for r in p])
    return rows


def _renumber(message: str, index: int) -> str:
    """A one-text call's message ("text 1: reason") renamed for text `index` (0-based)."""
    for prefix in ("text 1: ", "text 0: "):
        if message.startswith(prefix):
            return f"text {index + 1}: {message[len(prefix):]}"
    return message


def _text_bytes(t: Any, i: int) -> bytes:
    if isinstance(t, str):
        try:
            return t.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: undecodable bytes carried by surrogateescape (sys.argv, os
            # functions) become those bytes again, other surrogates their UTF-8-like form;
            # either way Tern reports invalid UTF-8 at the byte offset.
            try:
                return t.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return t.encode("utf-8", "surrogatepass")
    if isinstance(t, (bytes, bytearray, memoryview)):
        return bytes(t)
    raise Error(f"text {i + 1}: expected str or bytes, got {type(t).__name__}")


def _pil_image_type():
    mod = sys.modules.get("PIL.Image")  # never import PIL for callers that do not use it
    return getattr(mod, "Image", None) if mod is not None else None


def _is_single_image(x: Any) -> bool:
    if isinstance(x, (str, bytes, bytearray, memoryview, os.PathLike)):
        return True
    if isinstance(x, np.ndarray):
        return x.ndim != 4
    pil = _pil_image_type()
    return pil is not None and isinstance(x, pil)


def _image_item(x: Any, i: int) -> tuple:
    if isinstance(x, (str, os.PathLike)):
        return (_PATH, os.fsencode(x))
    if isinstance(x, (bytes, bytearray, memoryview)):
        return (_BYTES, bytes(x))
    pil = _pil_image_type()
    if pil is not None and isinstance(x, pil):
        x = np.asarray(x.convert("RGB"))
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise Error(f"images[{i}]: expected an HxWx3 uint8 array of RGB pixels, got shape "
                        f"{tuple(x.shape)} and dtype {x.dtype}")
        return (_PIXELS, np.ascontiguousarray(x))
    raise Error(f"images[{i}]: expected a path, encoded bytes, a PIL.Image.Image or an HxWx3 "
                f"uint8 array, got {type(x).__name__}")


def _int_arg(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise Error(f"{name}: expected an integer, got {type(v).__name__}")
    if not -2**31 <= int(v) < 2**31:
        raise Error(f"{name}: {int(v)} is out of range")
    return int(v)


def _batch_arg(v: Any) -> int:
    n = _int_arg("batch_size", v)
    if n < 1:
        raise Error(f"batch size must be >= 1, got {n}")
    return n


def _pooling_arg(v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise Error(f"pooling: expected a str (none, cls, mean, ...), got {type(v).__name__}")
    return v


def _layer_arg(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (str, int, np.integer)):
        raise Error(f"layer: expected a layer name or index, got {type(v).__name__}")
    return str(v)


def _str_arg(name: str, v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise Error(f"{name}: expected a str, got {type(v).__name__}")
    return v
