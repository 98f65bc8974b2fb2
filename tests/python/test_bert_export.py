"""Exporter tests for `export.py bert`, sentence-transformers directories and `export.py auto`.

Fixtures are written at test time (tests/python/bert_testlib.py): HF BERT directories in the
layouts users download, sentence-transformers directories around them, torchvision state dicts.
What is checked: the canonical tensors equal the checkpoint's (q; k; v fused by rows), every
hyper-parameter lands in `config`, tokenizer settings come from whichever file has them, the
sentence-transformers modules become the `embedding` defaults (+ head.dense.K tensors), and every
bad source is one error line naming the file and the field, with nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bert_testlib as bt  # noqa: E402

from weights_tools import tern_format  # noqa: E402

EXPORT = bt.ROOT / "weights_tools" / "export.py"
SEED = 3


def export(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPORT), *map(str, argv)], capture_output=True,
                          text=True)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = Path(cls._tmp.name)
        cls.cfg = bt.TINY
        cls.state = bt.random_bert(cls.cfg, bt.VOCAB_UNCASED, SEED)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def out(self, name: str) -> Path:
        return self.tmp / (name + ".tern")

    def ok(self, *argv) -> tuple[dict, dict]:
        r = export(*argv)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = Path(argv[argv.index("-o") + 1])
        return tern_format.read_tern(str(out))

    def fails(self, expect: list[str], *argv) -> str:
        """Exit 1, one stderr line containing every string of `expect`, no output file."""
        out = Path(argv[argv.index("-o") + 1])
        r = export(*argv)
        self.assertEqual(r.returncode, 1, f"expected failure; stdout {r.stdout} stderr {r.stderr}")
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("export.py: error:")]
        self.assertEqual(len(lines), 1, r.stderr)
        for s in expect:
            self.assertIn(s, lines[0])
        self.assertFalse(out.exists(), f"{out} was written")
        self.assertEqual([p.name for p in out.parent.glob(out.name + "*")], [])
        return lines[0]

    def hf(self, name: str, **kw) -> Path:
        return bt.write_hf_dir(self.tmp / name, self.state, self.cfg, bt.VOCAB_UNCASED, **kw)


class ReferenceSelfCheck(Base):
    """The torch.nn reference (TorchBert) equals BertModel's forward written out in float64."""

    def test_torch_reference_matches_explicit_forward(self):
        model = bt.TorchBert(self.state, self.cfg)
        rng = np.random.default_rng(0)
        lengths = [5, 17, 1]
        ids = rng.integers(1000, bt.vocab_size(bt.VOCAB_UNCASED), size=(3, 17))
        got = bt.run_bert(model, ids, lengths)
        for i, n in enumerate(lengths):
            want = bt.explicit_bert(self.state, self.cfg, ids[i, :n])
            np.testing.assert_allclose(got[i, :n], want, rtol=0, atol=2e-5 * np.abs(want).max())
        # Token type 0 matters (the embedding is random, not zero).
        types = self.state["embeddings.token_type_embeddings.weight"]
        self.assertGreater(float(types[0].abs().min()), 0.0)


class BertExport(Base):
    def test_random_init_minilm_shape(self):
        tensors, meta = self.ok("bert", "--random-init", "--seed", 1, "--hidden-size", 384,
                                "--layers", 6, "--heads", 12, "--intermediate", 1536,
                                "--vocab", bt.VOCAB_UNCASED, "-o", self.out("minilm"))
        cfg = json.loads(meta["config"])
        self.assertEqual(cfg, {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                               "num_attention_heads": 12, "intermediate_size": 1536,
                               "max_position_embeddings": 512, "type_vocab_size": 2,
                               "layer_norm_eps": 1e-12, "hidden_act": "gelu"})
        self.assertEqual(meta["architecture"], "bert")
        self.assertEqual(sum(a.size for a in tensors.values()), 22_565_376)  # MiniLM-L6 w/o pooler
        self.assertEqual(tensors["layers.5.attn.qkv.weight"].shape, (1152, 384))
        self.assertEqual(tensors["embeddings.token_type"].shape, (2, 384))
        self.assertNotIn("pooler.weight", tensors)
        self.assertNotIn("embedding", meta)
        tok = json.loads(meta["tokenizer"])
        self.assertEqual((tok["lowercase"], tok["strip_accents"], tok["max_length"]),
                         (True, True, 512))

    def test_random_init_keep_head_and_bad_sizes(self):
        tensors, meta = self.ok("bert", "--random-init", "--hidden-size", 64, "--layers", 1,
                                "--heads", 2, "--intermediate", 128, "--keep-head",
                                "-o", self.out("head"))
        self.assertEqual(tensors["pooler.weight"].shape, (64, 64))
        self.assertTrue(json.loads(meta["config"])["pooler"])
        self.fails(["--hidden-size 64", "--heads 5"], "bert", "--random-init", "--hidden-size",
                   64, "--heads", 5, "-o", self.out("bad"))
        self.fails(["--layers"], "bert", "--random-init", "--layers", 0, "-o", self.out("bad"))

    def test_hf_layouts_convert_to_the_same_tensors(self):
        """BertModel (no prefix, safetensors), BertForMaskedLM (bert. prefix, .bin, MLM head),
        BertForPreTraining (MLM + NSP), TF-era gamma/beta names: one set of tensors."""
        layouts = {
            "model": self.hf("l_model"),
            "mlm": self.hf("l_mlm", prefix="bert.", fmt="bin", head="mlm"),
            "pretraining": self.hf("l_pre", prefix="bert.", head="pretraining"),
        }
        gb = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                        "LayerNorm.beta"): v
              for k, v in self.state.items()}
        layouts["gamma"] = bt.write_hf_dir(self.tmp / "l_gamma", gb, self.cfg, bt.VOCAB_UNCASED,
                                           prefix="bert.", fmt="bin", head="pretraining")
        results = {k: self.ok("bert", d, "-o", self.out("l_" + k)) for k, d in layouts.items()}
        ref, ref_meta = results["model"]
        s, h = self.state, self.cfg["hidden_size"]
        np.testing.assert_array_equal(ref["embeddings.token_type"],
                                      s["embeddings.token_type_embeddings.weight"].numpy())
        qkv = ref["layers.1.attn.qkv.weight"]
        for j, n in enumerate(("query", "key", "value")):
            np.testing.assert_array_equal(qkv[j * h:(j + 1) * h],
                                          s[f"encoder.layer.1.attention.self.{n}.weight"].numpy())
            np.testing.assert_array_equal(ref["layers.1.attn.qkv.bias"][j * h:(j + 1) * h],
                                          s[f"encoder.layer.1.attention.self.{n}.bias"].numpy())
        pairs = {"attn.out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
                 "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense",
                 "mlp_norm": "output.LayerNorm"}
        for new, old in pairs.items():
            for p in ("weight", "bias"):
                np.testing.assert_array_equal(ref[f"layers.0.{new}.{p}"],
                                              s[f"encoder.layer.0.{old}.{p}"].numpy())
        expected = {"embeddings.word", "embeddings.position", "embeddings.token_type",
                    "embeddings.norm.weight", "embeddings.norm.bias"}
        for i in range(2):
            expected |= {f"layers.{i}.{n}.{p}" for n in ["attn.qkv", *pairs] for p in ("weight",
                                                                                        "bias")}
        self.assertEqual(set(ref), expected)
        for name, (tensors, meta) in results.items():
            self.assertEqual(sorted(tensors), sorted(ref), name)
            for t in ref:
                np.testing.assert_array_equal(tensors[t], ref[t], err_msg=f"{name}: {t}")
            self.assertEqual(meta["config"], ref_meta["config"], name)
            self.assertEqual(meta["architecture"], "bert")
        cfg = json.loads(ref_meta["config"])
        self.assertEqual(cfg["type_vocab_size"], 2)
        self.assertEqual(cfg["layer_norm_eps"], 1e-12)
        self.assertEqual(cfg["num_attention_heads"], 4)

    def test_keep_head_keeps_the_pooler(self):
        tensors, _ = self.ok("bert", self.hf("pooler"), "--keep-head", "-o", self.out("pooler"))
        np.testing.assert_array_equal(tensors["pooler.weight"],
                                      self.state["pooler.dense.weight"].numpy())
        self.fails(["--keep-head", "pooler"], "bert", self.hf("nopooler", prefix="bert.",
                                                              head="mlm"),
                   "--keep-head", "-o", self.out("nopooler"))

    def test_config_values_are_read(self):
        d = self.hf("eps", config_extra={"layer_norm_eps": 1e-7})
        _, meta = self.ok("bert", d, "-o", self.out("eps"))
        self.assertEqual(json.loads(meta["config"])["layer_norm_eps"], 1e-7)

    def test_tokenizer_settings_from_whichever_file_has_them(self):
        cases = [
            # (tokenizer files, tokenizer_config, expected lowercase, strip_accents, max_length)
            ("vocab.txt", {"do_lower_case": True, "model_max_length": 32}, True, True, 32),
            ("vocab.txt", {"do_lower_case": True, "strip_accents": False}, True, False, 64),
            ("vocab.txt", {"do_lower_case": False}, False, False, 64),
            ("vocab.txt", None, True, True, 64),  # HF's BertTokenizer defaults
            ("tokenizer.json", None, True, True, 64),  # uncased vocab: lowercase in the json
            ("tokenizer.json", {"do_lower_case": False}, False, False, 64),  # config wins
            ("both", {"model_max_length": 10 ** 30}, True, True, 64),
        ]
        for i, (files, tc, lower, strip, max_len) in enumerate(cases):
            with self.subTest(files=files, tokenizer_config=tc):
                d = self.hf(f"tok{i}", tokenizer=files, tokenizer_config=tc)
                _, meta = self.ok("bert", d, "-o", self.out(f"tok{i}"))
                tok = json.loads(meta["tokenizer"])
                self.assertEqual((tok["lowercase"], tok["strip_accents"], tok["max_length"]),
                                 (lower, strip, max_len))
                self.assertEqual(meta["vocab"].split("\n"),
                                 bt.VOCAB_UNCASED.read_text().rstrip("\n").split("\n"))
        # tokenizer.json's normalizer settings, with strip_accents stated there.
        d = self.hf("tokjson_strip", tokenizer="tokenizer.json")
        tj = json.loads((d / "tokenizer.json").read_text())
        tj["normalizer"]["strip_accents"] = False
        tj["normalizer"]["handle_chinese_chars"] = False
        (d / "tokenizer.json").write_text(json.dumps(tj))
        _, meta = self.ok("bert", d, "-o", self.out("tokjson_strip"))
        tok = json.loads(meta["tokenizer"])
        self.assertEqual((tok["lowercase"], tok["strip_accents"], tok["tokenize_chinese_chars"]),
                         (True, False, False))

    def test_bad_checkpoints_name_the_problem(self):
        cases = [
            ({"hidden_act": "gelu_new"}, None, ["hidden_act", "gelu_new"]),
            ({"hidden_act": "relu"}, None, ["hidden_act", "relu"]),
            ({"position_embedding_type": "relative_key"}, None, ["position_embedding_type"]),
            ({"model_type": "roberta"}, None, ["model_type", "roberta"]),
            ({"num_hidden_layers": 3}, None, ["num_hidden_layers", "3"]),
            ({"intermediate_size": 100}, None, ["intermediate_size"]),
            ({"num_attention_heads": 5}, None, ["num_attention_heads 5"]),
            (None, "drop:encoder.layer.1.output.dense.bias", ["encoder.layer.1.output.dense.bias",
                                                              "missing"]),
            (None, "shape:encoder.layer.0.attention.self.key.weight",
             ["encoder.layer.0.attention.self.key.weight", "shape"]),
            (None, "add:encoder.layer.0.attention.self.distance_embedding.weight",
             ["distance_embedding", "not part of a BERT model"]),
            (None, "drop:embeddings.token_type_embeddings.weight",
             ["embeddings.token_type_embeddings.weight"]),
        ]
        for i, (config_extra, change, expect) in enumerate(cases):
            with self.subTest(config=config_extra, change=change):
                state = dict(self.state)
                if change:
                    op, key = change.split(":")
                    if op == "drop":
                        del state[key]
                    else:
                        state[key] = torch.zeros(3, 3)
                d = bt.write_hf_dir(self.tmp / f"bad{i}", state, self.cfg, bt.VOCAB_UNCASED,
                                    config_extra=config_extra)
                self.fails(expect, "bert", d, "-o", self.out(f"bad{i}"))
        d = bt.write_hf_dir(self.tmp / "badvocab", self.state, self.cfg, bt.VOCAB_CASED)
        self.fails(["config.json vocab_size = 28996", "30522"], "bert", d, "-o", self.out("bv"))
        d = bt.write_hf_dir(self.tmp / "badvocab2", self.state, self.cfg, bt.VOCAB_CASED,
                            config_extra={"vocab_size": 30522})
        self.fails(["vocabulary has 28996 tokens", "30522"], "bert", d, "-o", self.out("bv"))

    def test_state_dict_file_without_config(self):
        """A bare .safetensors of BertModel keys: sizes from the shapes, heads = H / 64 or
        --heads; no vocabulary is an error that says so."""
        path = self.tmp / "bare.safetensors"
        bt.write_safetensors(path, self.state)
        self.fails(["no vocabulary"], "bert", path, "-o", self.out("bare"))


class SentenceTransformersExport(Base):
    def st_dir(self, name: str, **kw) -> Path:
        hf_kw = kw.pop("hf_kw", {})
        return bt.write_st_dir(self.tmp / name, lambda p: bt.write_hf_dir(
            p, self.state, self.cfg, bt.VOCAB_UNCASED, **hf_kw), **kw)

    def test_modules_become_defaults(self):
        h = self.cfg["hidden_size"]
        d1 = bt.random_dense(h, 32, True, "tanh", 1)
        d2 = bt.random_dense(32, 16, False, "identity", 2)
        cases = [
            ("mean_plain", dict(pooling="mean"), []),
            ("cls_norm", dict(pooling="cls", normalize=True), []),
            ("max_nested", dict(pooling="max", nested=True, max_seq_length=40), []),
            ("sqrt_dense", dict(pooling="mean_sqrt_len", dense=[d1], normalize=True, fmt="bin"),
             [d1]),
            ("two_dense", dict(pooling="mean", include_prompt=False, dense=[d1, d2],
                               prompts={"query": "query: ", "passage": "passage: "},
                               default_prompt="query", max_seq_length=None), [d1, d2]),
        ]
        plain, _ = self.ok("bert", self.hf("plain"), "-o", self.out("plain"))
        for name, kw, dense in cases:
            with self.subTest(name):
                d = self.st_dir(name, **kw)
                r = export("bert", d, "-o", self.out(name))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"sentence-transformers defaults: {kw['pooling']} pooling", r.stdout)
                tensors, meta = tern_format.read_tern(str(self.out(name)))
                emb = json.loads(meta["embedding"])
                self.assertEqual(emb["pooling"], kw["pooling"])
                self.assertEqual(emb["include_prompt"], kw.get("include_prompt", True))
                self.assertEqual(emb["normalize"], kw.get("normalize", False))
                self.assertEqual(emb["prompts"], kw.get("prompts") or {})
                self.assertEqual(emb["default_prompt"], kw.get("default_prompt"))
                self.assertEqual(emb["max_length"], kw.get("max_seq_length", 32) or 64)
                self.assertEqual(emb["dim"], dense[-1]["weight"].shape[0] if dense else h)
                self.assertEqual(len(emb["dense"]), len(dense))
                for k, (dm, dn) in enumerate(zip(emb["dense"], dense)):
                    self.assertEqual(dm, {"prefix": f"head.dense.{k}",
                                          "in": dn["weight"].shape[1],
                                          "out": dn["weight"].shape[0],
                                          "bias": dn["bias"] is not None,
                                          "activation": dn["activation"]})
                    np.testing.assert_array_equal(tensors[f"head.dense.{k}.weight"],
                                                  dn["weight"].numpy())
                    if dn["bias"] is not None:
                        np.testing.assert_array_equal(tensors[f"head.dense.{k}.bias"],
                                                      dn["bias"].numpy())
                    else:
                        self.assertNotIn(f"head.dense.{k}.bias", tensors)
                encoder = {k: v for k, v in tensors.items() if not k.startswith("head.")}
                self.assertEqual(sorted(encoder), sorted(plain))
                for t in plain:
                    np.testing.assert_array_equal(encoder[t], plain[t], err_msg=t)
                # max_seq_length above model_max_length raises the tokenizer's limit with it.
                tok = json.loads(meta["tokenizer"])
                self.assertGreaterEqual(tok["max_length"], emb["max_length"])

    def test_max_seq_length_beyond_model_max_length(self):
        d = self.st_dir("mml", max_seq_length=48, hf_kw={"tokenizer_config": {
            "do_lower_case": True, "model_max_length": 16}})
        _, meta = self.ok("bert", d, "-o", self.out("mml"))
        self.assertEqual(json.loads(meta["embedding"])["max_length"], 48)
        self.assertEqual(json.loads(meta["tokenizer"])["max_length"], 48)

    def test_do_lower_case_lowercases_a_cased_tokenizer(self):
        """sentence_bert_config.json do_lower_case: ST lowercases the text before a cased
        tokenizer, which keeps its accents (strip_accents stays false)."""
        d = self.st_dir("lower", hf_kw={"tokenizer_config": {"do_lower_case": False}})
        (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 20,
                                                                 "do_lower_case": True}))
        _, meta = self.ok("bert", d, "-o", self.out("lower"))
        tok = json.loads(meta["tokenizer"])
        self.assertEqual((tok["lowercase"], tok["strip_accents"]), (True, False))
        d = self.st_dir("nolower", hf_kw={"tokenizer_config": {"do_lower_case": False}})
        _, meta = self.ok("bert", d, "-o", self.out("nolower"))
        tok = json.loads(meta["tokenizer"])
        self.assertEqual((tok["lowercase"], tok["strip_accents"]), (False, False))

    def test_distilbert_directory(self):
        """msmarco-distilbert style: the same defaults on a distilbert Transformer."""
        sys.path.insert(0, str(bt.ROOT))
        from weights_tools.archs import distilbert

        class A:
            layers, dim, heads, hidden_dim, max_positions = 2, 32, 4, 64, 40
            vocab = str(bt.VOCAB_CASED)

        src = distilbert.random_source(4, A())

        def write(p: Path):
            p.mkdir(parents=True, exist_ok=True)
            torch.save({"distilbert." + k: v for k, v in src.state_dict.items()},
                       p / "pytorch_model.bin")
            (p / "config.json").write_text(json.dumps(src.hf_config))
            (p / "vocab.txt").write_bytes(bt.VOCAB_CASED.read_bytes())
            (p / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))

        dn = bt.random_dense(32, 8, True, "tanh", 9)
        d = bt.write_st_dir(self.tmp / "st_distil", write, pooling="cls", dense=[dn],
                            normalize=True, max_seq_length=30)
        tensors, meta = self.ok("distilbert", d, "-o", self.out("st_distil"))
        emb = json.loads(meta["embedding"])
        self.assertEqual((emb["pooling"], emb["normalize"], emb["max_length"], emb["dim"]),
                         ("cls", True, 30, 8))
        np.testing.assert_array_equal(tensors["head.dense.0.weight"], dn["weight"].numpy())
        tensors2, meta2 = self.ok("auto", d, "-o", self.out("st_distil_auto"))
        self.assertEqual(meta2["architecture"], "distilbert")
        self.assertEqual(meta2["embedding"], meta["embedding"])

    def test_bad_directories_name_file_and_field(self):
        h = self.cfg["hidden_size"]

        def edit(name, fn, **kw):
            d = self.st_dir(name, **kw)
            fn(d)
            return d

        def set_json(path: Path, **changes):
            value = json.loads(path.read_text())
            value.update(changes)
            path.write_text(json.dumps(value))

        def modules(d: Path, fn):
            m = json.loads((d / "modules.json").read_text())
            (d / "modules.json").write_text(json.dumps(fn(m)))

        wrong = bt.random_dense(h + 1, 8, True, "tanh", 3)
        ok1 = bt.random_dense(h, 8, True, "tanh", 3)
        wrong2 = bt.random_dense(9, 4, True, "tanh", 4)
        cases = [
            ("weighted", lambda d: modules(d, lambda m: m[:1] + [
                dict(m[1], type=bt.ST + "WeightedLayerPooling")] + m[1:]),
             {}, ["modules.json", "WeightedLayerPooling"]),
            ("nopoolcfg", lambda d: (d / "1_Pooling" / "config.json").unlink(), {},
             ["1_Pooling/config.json", "missing"]),
            ("nomode", lambda d: set_json(d / "1_Pooling" / "config.json",
                                          pooling_mode_mean_tokens=False), {},
             ["1_Pooling/config.json", "no pooling mode"]),
            ("twomodes", lambda d: set_json(d / "1_Pooling" / "config.json",
                                            pooling_mode_cls_token=True), {},
             ["1_Pooling/config.json", "pooling_mode_cls_token", "pooling_mode_mean_tokens"]),
            ("weightedmean", lambda d: set_json(d / "1_Pooling" / "config.json",
                                                pooling_mode_mean_tokens=False,
                                                pooling_mode_weightedmean_tokens=True), {},
             ["1_Pooling/config.json", "pooling_mode_weightedmean_tokens"]),
            ("pooldim", lambda d: set_json(d / "1_Pooling" / "config.json",
                                           word_embedding_dimension=h * 2), {},
             ["1_Pooling/config.json", "word_embedding_dimension", str(h * 2)]),
            ("densein", lambda d: None, {"dense": [wrong]},
             ["2_Dense/config.json", "in_features", str(h + 1), str(h)]),
            ("densein2", lambda d: None, {"dense": [ok1, wrong2]},
             ["3_Dense/config.json", "in_features 9", "previous Dense"]),
            ("denseact", lambda d: set_json(d / "2_Dense" / "config.json",
                                            activation_function="torch.nn.modules.activation.ReLU"),
             {"dense": [ok1]}, ["2_Dense/config.json", "activation_function", "ReLU"]),
            ("denseshape", lambda d: set_json(d / "2_Dense" / "config.json", out_features=7),
             {"dense": [ok1]}, ["2_Dense", "linear.weight", "out_features 7"]),
            ("denseweights", lambda d: (d / "2_Dense" / "model.safetensors").unlink(),
             {"dense": [ok1]}, ["2_Dense", "no model.safetensors or pytorch_model.bin"]),
            ("nopooling", lambda d: modules(d, lambda m: m[:1]), {},
             ["modules.json", "Pooling"]),
            ("normfirst", lambda d: modules(d, lambda m: [m[0], m[1], m[3], m[2]]),
             {"dense": [ok1], "normalize": True}, ["modules.json", "Normalize must be the last"]),
            ("maxlen", lambda d: set_json(d / "sentence_bert_config.json", max_seq_length=65), {},
             ["sentence_bert_config.json", "max_seq_length 65", "64 position"]),
            ("maxlen0", lambda d: set_json(d / "sentence_bert_config.json", max_seq_length=0), {},
             ["sentence_bert_config.json", "max_seq_length"]),
            ("prompt", lambda d: set_json(d / "config_sentence_transformers.json",
                                          default_prompt_name="doc"),
             {"prompts": {"query": "q: "}}, ["config_sentence_transformers.json",
                                             "default_prompt_name", "doc"]),
            ("prompts", lambda d: set_json(d / "config_sentence_transformers.json",
                                           prompts={"query": 3}), {},
             ["config_sentence_transformers.json", "prompts"]),
            ("notransformer", lambda d: (d / "0_Transformer" / "config.json").unlink(),
             {"nested": True}, ["0_Transformer/config.json", "missing"]),
            ("escape", lambda d: modules(d, lambda m: [dict(m[0], path="../x")] + m[1:]), {},
             ["modules.json", "leaves the directory"]),
            ("badjson", lambda d: (d / "modules.json").write_text("[{"), {},
             ["modules.json", "not valid JSON"]),
        ]
        for name, fn, kw, expect in cases:
            with self.subTest(name):
                d = edit("bad_" + name, fn, **kw)
                self.fails(expect, "bert", d, "-o", self.out("bad_" + name))
                self.fails(expect, "auto", d, "-o", self.out("bad_" + name))


class AutoExport(Base):
    def same(self, a: Path, b: Path) -> str:
        ta, ma = tern_format.read_tern(str(a))
        tb, mb = tern_format.read_tern(str(b))
        self.assertEqual(sorted(ta), sorted(tb))
        for t in ta:
            np.testing.assert_array_equal(ta[t], tb[t], err_msg=t)
        for key in ("architecture", "config", "tokenizer", "preprocess", "embedding"):
            self.assertEqual(ma.get(key), mb.get(key), key)
        return ma["architecture"]

    def test_every_architecture(self):
        import torchvision
        from torchvision.models.vision_transformer import VisionTransformer

        torch.manual_seed(0)
        resnet = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck,
                                                  [1, 2, 1, 1])
        torch.save(resnet.state_dict(), self.tmp / "resnet.pth")
        vit = VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                hidden_dim=128, mlp_dim=32)  # auto: 128 / 64 heads
        torch.save(vit.state_dict(), self.tmp / "vit.pth")
        bert_dir = self.hf("auto_bert", prefix="bert.", head="mlm")
        st_dir = bt.write_st_dir(self.tmp / "auto_st", lambda p: bt.write_hf_dir(
            p, self.state, self.cfg, bt.VOCAB_UNCASED), pooling="cls", normalize=True)
        distil = self.tmp / "auto_distil.tern"
        # A distilbert HF directory from the exporter's own random source.
        from weights_tools.archs import distilbert

        class A:
            layers, dim, heads, hidden_dim, max_positions = 1, 16, 2, 32, 20
            vocab = str(bt.VOCAB_CASED)

        src = distilbert.random_source(1, A())
        dd = self.tmp / "distil_dir"
        dd.mkdir()
        torch.save(src.state_dict, dd / "pytorch_model.bin")
        (dd / "config.json").write_text(json.dumps(src.hf_config))
        (dd / "vocab.txt").write_bytes(bt.VOCAB_CASED.read_bytes())
        cases = [
            ("resnet50", self.tmp / "resnet.pth", ["--layers", "1,2,1,1"]),
            ("vit_b_16", self.tmp / "vit.pth", ["--heads", "2"]),
            ("bert", bert_dir, []),
            ("bert", st_dir, []),
            ("distilbert", dd, []),
        ]
        for arch, source, opts in cases:
            with self.subTest(arch=arch, source=source.name):
                a = self.tmp / f"auto_{source.name}.tern"
                b = self.tmp / f"named_{source.name}.tern"
                self.ok("auto", source, "-o", a)
                self.ok(arch, source, *opts, "-o", b)
                self.assertEqual(self.same(a, b), arch)
        del distil

    def test_unknown_sources(self):
        d = self.hf("roberta", config_extra={"model_type": "roberta"})
        self.fails(["config.json", "model_type", "roberta"], "auto", d, "-o", self.out("r"))
        torch.save({"foo.weight": torch.zeros(2)}, self.tmp / "foo.pth")
        self.fails(["cannot tell the architecture", "foo.weight"], "auto", self.tmp / "foo.pth",
                   "-o", self.out("foo"))
        self.fails(["--random-init"], "auto", "--random-init", "-o", self.out("ri"))


if __name__ == "__main__":
    unittest.main()
