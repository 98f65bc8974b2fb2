"""The .tern format end to end: the Python writer, an independent safetensors check, the C++
reader through `tern info`, and the exporter frame (weights_tools/export.py) with a fake
architecture module.

Env: TERN_BIN (the tern CLI; default build/tern).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import types
import unittest

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from weights_tools import archs, export, sources, tern_format  # noqa: E402
from weights_tools.sources import ExportError, Source  # noqa: E402

TERN_BIN = os.environ.get("TERN_BIN", os.path.join(REPO, "build", "tern"))
EXPORT = os.path.join(REPO, "weights_tools", "export.py")


def tern(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([TERN_BIN, *argv], capture_output=True, text=True)


def tern_json(*argv: str):
    p = tern(*argv)
    if p.returncode != 0:
        raise AssertionError(f"tern {' '.join(argv)} failed: {p.stderr}")
    return json.loads(p.stdout)


def tern_values(path: str, name: str) -> np.ndarray:
    p = tern("info", path, "--tensor", name)
    if p.returncode != 0:
        raise AssertionError(f"tern info --tensor {name} failed: {p.stderr}")
    j = json.loads(p.stdout, parse_int=float)  # keeps "-0" negative
    j["shape"] = [int(d) for d in j["shape"]]
    special = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}
    flat = [special[v] if isinstance(v, str) else v for v in j["values"]]
    return np.array(flat, dtype=np.float32).reshape(j["shape"])


def independent_safetensors_check(path: str) -> dict:
    """What a strict safetensors reader requires, written from the format description alone."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert 8 + n <= len(blob), "header length past the end"
    text = blob[8:8 + n].decode("utf-8")
    assert text.startswith("{"), "header must start with '{'"
    header = json.loads(text)
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    sizes = {"F32": 4, "BF16": 2, "U8": 1, "F16": 2, "I64": 8}
    expected = 0
    for name, e in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = e["data_offsets"]
        assert begin == expected, f"{name}: hole or overlap at {begin} (expected {expected})"
        count = 1
        for d in e["shape"]:
            count *= d
        assert end - begin == count * sizes[e["dtype"]], f"{name}: size mismatch"
        expected = end
    assert 8 + n + expected == len(blob), "data section not covered exactly"
    return {"data_start": 8 + n, "header": header, "metadata": meta}


def tern_metadata(**extra) -> dict:
    return {"format": "tern", "format_version": "1", "architecture": "toy", **extra}


def sample_tensors() -> dict:
    rng = np.random.default_rng(7)
    return {
        "embed.weight": rng.standard_normal((13, 7)).astype(np.float32),
        "odd": rng.standard_normal(3).astype(np.float32) * 1e3,
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, 3.4e38, 1.00390625, 1.01171875,
                             -2.0 ** -130], dtype=np.float32),
        "scalar": np.array(0.25, dtype=np.float32),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "deep": rng.standard_normal((1, 2, 1, 3, 1, 2, 1, 2)).astype(np.float32),
    }


class WriterAndReader(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, dtype: str, tensors=None, name="m.tern") -> str:
        path = os.path.join(self.dir, name)
        tern_format.write_tern(path, tensors or sample_tensors(),
                               tern_metadata(config=json.dumps({"hidden": 7})), dtype)
        return path

    def test_valid_safetensors_and_aligned(self):
        for dtype in ("f32", "bf16"):
            path = self.write(dtype)
            info = independent_safetensors_check(path)
            self.assertEqual(info["data_start"] % 64, 0)
            real = {k: v for k, v in info["header"].items() if not k.startswith("__pad")}
            self.assertEqual(set(real), set(sample_tensors()))
            for name, e in real.items():
                self.assertEqual(e["dtype"], "F32" if dtype == "f32" else "BF16")
                self.assertEqual((info["data_start"] + e["data_offsets"][0]) % 64, 0, name)
            for name, e in info["header"].items():
                if name.startswith("__pad"):
                    self.assertEqual(e["dtype"], "U8")
                    self.assertLess(e["shape"][0], 64)

    def test_tern_info_json_reads_f32_and_bf16(self):
        expect = sample_tensors()
        for dtype in ("f32", "bf16"):
            path = self.write(dtype)
            j = tern_json("info", path, "--json")
            self.assertEqual(j["format"], "tern")
            self.assertEqual(j["format_version"], 1)
            self.assertEqual(j["architecture"], "toy")
            self.assertEqual(j["config"], {"hidden": 7})
            self.assertEqual(j["dtypes"], ["F32" if dtype == "f32" else "BF16"])
            self.assertEqual(j["tensor_count"], len(expect))
            self.assertEqual(j["parameter_count"], sum(a.size for a in expect.values()))
            self.assertEqual(j["file_size"], os.path.getsize(path))
            shapes = {t["name"]: t["shape"] for t in j["tensors"]}
            self.assertEqual(shapes, {k: list(v.shape) for k, v in expect.items()})
            text = tern("info", path)
            self.assertEqual(text.returncode, 0, text.stderr)
            self.assertIn("architecture  toy", text.stdout)

    def test_values_round_trip_through_the_cpp_reader(self):
        expect = sample_tensors()
        path = self.write("f32")
        for name, a in expect.items():
            got = tern_values(path, name)
            np.testing.assert_array_equal(got, a, err_msg=name)  # NaN == NaN here
            self.assertTrue(np.array_equal(np.signbit(got), np.signbit(a)), name)
        path = self.write("bf16", name="b.tern")
        for name, a in expect.items():
            # torch's float32 -> bfloat16 conversion (round to nearest even) is the oracle.
            oracle = torch.from_numpy(a.copy()).to(torch.bfloat16).to(torch.float32).numpy()
            got = tern_values(path, name)
            np.testing.assert_array_equal(got, oracle, err_msg=name)
            py_tensors, _ = tern_format.read_tern(path)
            np.testing.assert_array_equal(py_tensors[name], oracle, err_msg=name)
        specials = tern_values(path, "special")
        self.assertEqual(specials[6], 1.0)        # tie rounds to even
        self.assertEqual(specials[7], 1.015625)   # tie rounds to even (upwards)
        self.assertEqual(specials[5], np.inf)      # 3.4e38 rounds past the largest BF16

    def test_nan_stays_nan_in_bf16(self):
        payloads = np.array([0x7F800001, 0xFF800001, 0x7FC00000, 0x7FFFFFFF], dtype=np.uint32)
        bits = tern_format.f32_to_bf16_bits(payloads.view(np.float32))
        self.assertTrue(np.isnan(tern_format.bf16_bits_to_f32(bits)).all())

    def test_python_read_tern_round_trip(self):
        path = self.write("f32")
        tensors, meta = tern_format.read_tern(path)
        self.assertEqual(meta["format"], "tern")
        for name, a in sample_tensors().items():
            np.testing.assert_array_equal(tensors[name], a)

    def test_writer_refuses_bad_input_and_leaves_nothing(self):
        path = os.path.join(self.dir, "x.tern")
        with self.assertRaises(TypeError):
            tern_format.write_tern(path, {"a": np.arange(3)}, tern_metadata())
        with self.assertRaises(TypeError):
            tern_format.write_tern(path, {"a": np.zeros(3, np.float32)}, {"n": 1})
        with self.assertRaises(ValueError):
            tern_format.write_tern(path, {"__pad0__": np.zeros(3, np.float32)}, tern_metadata())
        with self.assertRaises(ValueError):
            tern_format.write_tern(path, {"a": np.zeros(3, np.float32)}, tern_metadata(), "f16")
        self.assertEqual(os.listdir(self.dir), [])

    def test_cpp_reader_errors_are_one_line(self):
        path = os.path.join(self.dir, "plain.safetensors")
        tern_format.write_tern(path, {"a": np.zeros(2, np.float32)}, {"x": "y"})
        p = tern("info", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a Tern weight file (safetensors without __metadata__.format=tern)",
                      p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        p = tern("info", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a directory", p.stderr)
        self.assertEqual(tern("info", "--cpu").returncode, 0)
        self.assertEqual(tern("info", "--help").returncode, 0)


# ---- the exporter frame, with a fake architecture module ---------------------------------------

FAKE_ARCH = "resnet50"  # a registered name; the fake module replaces the real one in sys.modules
FAKE_MODULE = f"weights_tools.archs.{archs.ARCHS[FAKE_ARCH]}"


def make_fake_arch(behaviour: str = "ok") -> types.ModuleType:
    m = types.ModuleType(FAKE_MODULE)

    def add_arguments(parser):
        parser.add_argument("--fake-width", type=int, default=4, help="fake option")

    def random_source(seed, args):
        g = torch.Generator().manual_seed(seed)
        sd = {"fc.weight": torch.randn(args.fake_width, 3, generator=g), "fc.bias": torch.zeros(3)}
        return Source(path=None, description="random fake", sha256=None, state_dict=sd)

    def convert(source, args):
        sd = source.state_dict
        if "fc.weight" not in sd:
            raise ExportError("tensor fc.weight is missing from the checkpoint")
        if tuple(sd["fc.weight"].shape) != (args.fake_width, 3):
            raise ExportError(f"tensor fc.weight has shape {list(sd['fc.weight'].shape)}, "
                              f"expected [{args.fake_width}, 3]")
        tensors = {"head.w": sd["fc.weight"].float().numpy(), "head.b": sd["fc.bias"].float().numpy()}
        meta = {"config": json.dumps({"width": args.fake_width}),
                "preprocess": json.dumps({"profile": args.preprocess or "torchvision-v1"})}
        if behaviour == "float64":
            tensors["head.w"] = tensors["head.w"].astype(np.float64)
        if behaviour == "int-metadata":
            meta["config"] = 5
        if behaviour == "reserved-metadata":
            meta["format"] = "other"
        return tensors, meta

    m.add_arguments, m.random_source, m.convert = add_arguments, random_source, convert
    return m


class ExporterFrame(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.saved = sys.modules.get(FAKE_MODULE)
        sys.modules[FAKE_MODULE] = make_fake_arch()

    def tearDown(self):
        if self.saved is None:
            sys.modules.pop(FAKE_MODULE, None)
        else:
            sys.modules[FAKE_MODULE] = self.saved
        self.tmp.cleanup()

    def run_export(self, *argv: str):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = export.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def assert_fails(self, argv, message, out):
        rc, _, err = self.run_export(*argv)
        self.assertEqual(rc, 1, err)
        self.assertIn(message, err)
        self.assertFalse(os.path.exists(out), "partial output left behind")
        self.assertEqual([f for f in os.listdir(self.dir) if f.endswith(".tmp")], [])

    def test_random_init(self):
        out = os.path.join(self.dir, "r.tern")
        rc, stdout, err = self.run_export(FAKE_ARCH, "--random-init", "--seed", "5", "-o", out,
                                          "--fake-width", "6", "--dtype", "bf16")
        self.assertEqual(rc, 0, err)
        self.assertIn("2 tensors, 21 parameters", stdout)
        j = tern_json("info", out, "--json")
        self.assertEqual(j["architecture"], FAKE_ARCH)
        self.assertEqual(j["dtypes"], ["BF16"])
        self.assertEqual(j["config"], {"width": 6})
        self.assertEqual(j["source"]["kind"], "random-init")
        self.assertEqual(j["source"]["seed"], 5)
        self.assertEqual(j["source"]["exporter"], "tern-export 0.1.0")
        independent_safetensors_check(out)

    def test_checkpoint_pth_and_safetensors_and_hf_directory(self):
        sd = {"fc.weight": torch.randn(4, 3), "fc.bias": torch.randn(3),
              "fc.num_batches_tracked": torch.tensor(3)}
        pth = os.path.join(self.dir, "ckpt.pth")
        torch.save({"state_dict": sd, "epoch": 3}, pth)
        out = os.path.join(self.dir, "c.tern")
        rc, _, err = self.run_export(FAKE_ARCH, pth, "-o", out, "--preprocess", "timm")
        self.assertEqual(rc, 0, err)
        j = tern_json("info", out, "--json")
        self.assertEqual(j["source"]["kind"], "checkpoint")
        with open(pth, "rb") as f:
            self.assertEqual(j["source"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(j["preprocess"], {"profile": "timm"})
        np.testing.assert_array_equal(tern_values(out, "head.w"), sd["fc.weight"].numpy())

        # A .safetensors checkpoint with F16 and I64 entries, parsed without the safetensors package.
        st = os.path.join(self.dir, "model.safetensors")
        w16 = np.arange(12, dtype=np.float16).reshape(4, 3)
        parts = [("fc.weight", "F16", w16), ("fc.bias", "F32", np.ones(3, np.float32)),
                 ("steps", "I64", np.array([7], np.int64))]
        header, data = {}, b""
        for name, dt, a in parts:
            header[name] = {"dtype": dt, "shape": list(a.shape),
                            "data_offsets": [len(data), len(data) + a.nbytes]}
            data += a.tobytes()
        h = json.dumps(header).encode()
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
        src = sources.load_source(st)
        self.assertEqual(src.state_dict["steps"].item(), 7)
        rc, _, err = self.run_export(FAKE_ARCH, st, "-o", out)
        self.assertEqual(rc, 0, err)
        np.testing.assert_array_equal(tern_values(out, "head.w"), w16.astype(np.float32))

        # A Hugging Face directory: config.json + model.safetensors + tokenizer.json vocab by id.
        hf = os.path.join(self.dir, "hf")
        os.mkdir(hf)
        os.rename(st, os.path.join(hf, "model.safetensors"))
        with open(os.path.join(hf, "config.json"), "w") as f:
            json.dump({"dim": 4}, f)
        with open(os.path.join(hf, "tokenizer.json"), "w") as f:
            json.dump({"model": {"type": "WordPiece", "vocab": {"b": 1, "[PAD]": 0, "c": 2}}}, f)
        src = sources.load_source(hf)
        self.assertEqual(src.vocab, ["[PAD]", "b", "c"])
        self.assertEqual(src.hf_config, {"dim": 4})
        self.assertEqual(src.path, os.path.join(hf, "model.safetensors"))

    def test_errors_exit_1_and_leave_no_output(self):
        out = os.path.join(self.dir, "e.tern")
        self.assert_fails([FAKE_ARCH, os.path.join(self.dir, "missing.pth"), "-o", out],
                          "does not exist", out)
        self.assert_fails(["nosuch", "x.pth", "-o", out], "unknown architecture 'nosuch'", out)
        junk = os.path.join(self.dir, "junk.pth")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint at all")
        self.assert_fails([FAKE_ARCH, junk, "-o", out], "cannot load", out)
        weird = os.path.join(self.dir, "weights.xyz")
        with open(weird, "wb") as f:
            f.write(b"\x00" * 16)
        self.assert_fails([FAKE_ARCH, weird, "-o", out], "unknown checkpoint format", out)
        bad = os.path.join(self.dir, "bad.pth")
        torch.save({"fc.weight": torch.randn(5, 3), "fc.bias": torch.zeros(3)}, bad)
        self.assert_fails([FAKE_ARCH, bad, "-o", out],
                          "tensor fc.weight has shape [5, 3], expected [4, 3]", out)
        torch.save({"other": torch.zeros(1)}, bad)
        self.assert_fails([FAKE_ARCH, bad, "-o", out], "tensor fc.weight is missing", out)
        self.assert_fails([FAKE_ARCH, "--random-init", "-o", out, "--dtype", "f16"],
                          "invalid choice", out)
        self.assert_fails([FAKE_ARCH, bad, "--random-init", "-o", out], "not both", out)
        self.assert_fails([FAKE_ARCH, "-o", out], "missing SOURCE", out)
        self.assert_fails([FAKE_ARCH, "--random-init", "-o", os.path.join(self.dir, "no", "x.tern")],
                          "does not exist", out)

    def test_frame_validates_the_arch_module(self):
        out = os.path.join(self.dir, "v.tern")
        for behaviour, message in (("float64", "tensor head.w is float64, expected float32"),
                                   ("int-metadata", "metadata 'config' must be a string"),
                                   ("reserved-metadata", "'format' belongs to the frame")):
            sys.modules[FAKE_MODULE] = make_fake_arch(behaviour)
            self.assert_fails([FAKE_ARCH, "--random-init", "-o", out], message, out)

    def test_unavailable_arch_and_failed_write(self):
        out = os.path.join(self.dir, "u.tern")
        archs.ARCHS["toy_later"] = "no_such_module_yet"
        try:
            self.assert_fails(["toy_later", "--random-init", "-o", out],
                              "architecture toy_later is not available yet", out)
        finally:
            del archs.ARCHS["toy_later"]
        # A failure in the middle of writing leaves neither the output nor the temporary file.
        original = tern_format._encode
        calls = []

        def failing_encode(array, dtype):
            calls.append(1)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            return original(array, dtype)

        tern_format._encode = failing_encode
        try:
            self.assert_fails([FAKE_ARCH, "--random-init", "-o", out], "No space left", out)
        finally:
            tern_format._encode = original

    def test_command_line(self):
        from weights_tools import archs
        self.assertIn("clip", archs.ARCHS)
        p = subprocess.run(["/usr/bin/python3", EXPORT, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for flag in ("--dtype", "--preprocess", "--keep-head", "--random-init", "--seed", "--vocab"):
            self.assertIn(flag, p.stdout)
        out = os.path.join(self.dir, "cli.tern")
        p = subprocess.run(["/usr/bin/python3", EXPORT, "nosuch", "--random-init", "-o", out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip().splitlines(),
                         ["export.py: error: unknown architecture 'nosuch' "
                          f"(known: {', '.join(sorted(archs.ARCHS))})"])
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
