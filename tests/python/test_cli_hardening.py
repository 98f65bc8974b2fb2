#!/usr/bin/python3
"""Issue 21 through the real `tern` binary: the CLI loses no data and never hangs, whatever it is
given. One test class per row of the issue's table (numbered as there), plus the same classes of
defect found elsewhere in the CLI. Models are small random-weight exports.

Run: TERN_BIN=build/tern TERN_BUILD_DIR=build /usr/bin/python3 tests/python/test_cli_hardening.py
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_testlib import TERN, export

LINE_CAP = 1 << 20  # frontend::kMaxTextLineBytes, documented in --help and the README
TMP = Path(tempfile.mkdtemp(prefix="tern-hardening-"))
TEXT = TMP / "text.tern"
IMAGE = TMP / "image.tern"
PNG = TMP / "a.png"


def sanitized() -> bool:
    """An ASan build reserves terabytes of shadow address space: RLIMIT_AS tests cannot run."""
    with open(TERN, "rb") as f:
        return b"__asan_init" in f.read()


SANITIZED = sanitized()


def setUpModule():
    export("distilbert", TEXT, "--layers", "1", "--dim", "32", "--heads", "2", "--hidden-dim", "64")
    export("resnet50", IMAGE, "--layers", "1,1,1,1")
    write_png(PNG, 40, 30, 1)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def write_png(path: Path, w: int, h: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def tern(*args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Runs tern with bytes-safe arguments; stdout/stderr as bytes unless given."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    argv = [os.fsencode(os.path.abspath(TERN))]
    argv += [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run(argv, timeout=timeout, **kw)


def err(p: subprocess.CompletedProcess) -> str:
    return p.stderr.decode("utf-8", "replace")


class Base(unittest.TestCase):
    def fails(self, p, needle: str):
        self.assertNotEqual(p.returncode, 0, f"accepted; stderr: {err(p)}")
        self.assertIn(needle, err(p))
        lines = err(p).splitlines()
        self.assertEqual(len(lines), 1, f"error is not one line: {err(p)!r}")
        return err(p)


class T01StdoutErrors(Base):
    """#1: a write or flush error on stdout is an error, for every command."""

    def test_dev_full_is_an_error_for_every_command(self):
        cases = [
            ["embed", IMAGE, PNG],
            ["embed", TEXT, "--text", "hello"],
            ["tokenize", TEXT, "--text", "hello"],
            ["info", TEXT],
            ["info", TEXT, "--json"],
            ["info", TEXT, "--tensors"],
            ["info", "--cpu"],
            ["--version"],
            ["--help"],
            ["embed", "--help"],
            ["bench", TEXT, "--seq-len", "8", "--iters", "1", "--warmup", "0"],
            ["bench", TEXT, "--seq-len", "8", "--iters", "1", "--warmup", "0", "--json"],
        ]
        for args in cases:
            with self.subTest(args=args), open("/dev/full", "wb") as full:
                p = tern(*args, stdout=full)
                self.assertEqual(p.returncode, 1, err(p))
                self.assertIn("cannot write to standard output", err(p))

    def test_closed_stdout_is_an_error_and_no_file_receives_output(self):
        # With fd 1 closed, the model file (or an output's temporary file) would get fd 1 and
        # receive what is printed: tern holds closed descriptors with /dev/null first.
        for args in (["info", TEXT], ["embed", TEXT, "--text", "a"], ["--version"]):
            with self.subTest(args=args):
                p = tern(*args, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
                self.assertEqual(p.returncode, 1, err(p))
                self.assertIn("cannot write to standard output", err(p))
        out = TMP / "closed-stderr.npy"
        p = tern("embed", TEXT, "--text", "a", "-o", out, stderr=subprocess.DEVNULL,
                 preexec_fn=lambda: os.close(2))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(np.load(out).shape[1], 32)

    def test_ok_output_still_exits_zero(self):
        p = tern("info", TEXT, "--json")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(json.loads(p.stdout)["architecture"], "distilbert")


class T02OutputIsAnInput(Base):
    """#2: an output that is one of the inputs (however spelled) is refused before any work."""

    def test_text_file_as_output(self):
        d = TMP / "same"
        d.mkdir(exist_ok=True)
        src = d / "s.jsonl"
        src.write_text("first text\nsecond text\n")
        os.link(src, d / "hard.jsonl")
        before = src.read_bytes()
        spellings = (src, d / ".." / "same" / "s.jsonl", Path(os.path.relpath(src)),
                     d / "hard.jsonl")
        for out in spellings:
            with self.subTest(out=str(out)):
                p = tern("embed", TEXT, "--text-file", src, "-o", out)
                self.fails(p, "the output is also an input")
                self.assertEqual(src.read_bytes(), before)
        # Through a symlink to the input, too.
        (d / "link.jsonl").symlink_to(src)
        self.fails(tern("embed", TEXT, "--text-file", d / "link.jsonl", "-o", src),
                   "the output is also an input")
        # Standard input redirected from the output file.
        with open(src, "rb") as f:
            self.fails(tern("embed", TEXT, "--text-file", "-", "-o", src, stdin=f),
                       "the output is also an input")
        self.assertEqual(src.read_bytes(), before)

    def test_image_and_model_as_output(self):
        img = TMP / "img.npy"  # an image with an output's name: decoded by content
        shutil.copy(PNG, img)
        before = img.read_bytes()
        self.fails(tern("embed", IMAGE, img, "-o", img), "the output is also an input")
        self.assertEqual(img.read_bytes(), before)
        model = TMP / "model.npy"
        shutil.copy(TEXT, model)
        self.fails(tern("embed", model, "--text", "a", "-o", model), "the model file")
        self.assertEqual(model.read_bytes(), TEXT.read_bytes())


class T03StreamingText(Base):
    """#3: text input is a stream with bounded memory; one rule for non-regular files."""

    def test_devices_refused_at_once_by_embed_and_tokenize(self):
        for cmd in ("embed", "tokenize"):
            for dev in ("/dev/zero", "/dev/urandom", "/dev/null"):
                with self.subTest(cmd=cmd, dev=dev):
                    t0 = time.monotonic()
                    p = tern(cmd, TEXT, "--text-file", dev, timeout=30)
                    self.fails(p, "a character device")
                    self.assertLess(time.monotonic() - t0, 10)

    def test_stdin_zero_hits_the_line_cap_in_bounded_memory(self):
        # 1 GiB of address space: a reader that held the stream would run out of memory instead.
        def limit():
            if not SANITIZED:
                resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        for cmd in ("embed", "tokenize"):
            with self.subTest(cmd=cmd), open("/dev/zero", "rb") as zero:
                p = tern(cmd, TEXT, "--text-file", "-", stdin=zero, preexec_fn=limit, timeout=60)
                self.fails(p, f"stdin:1: the line is longer than {LINE_CAP} bytes")

    def test_sparse_file_fails_at_the_cap(self):
        sparse = TMP / "sparse.txt"
        with open(sparse, "wb") as f:
            f.truncate(10 << 30)  # 10 GiB of zeros, no newline, no disk
        try:
            t0 = time.monotonic()
            p = tern("embed", TEXT, "--text-file", sparse, timeout=60)
            self.fails(p, "sparse.txt:1: the line is longer than")
            self.assertLess(time.monotonic() - t0, 20)
        finally:
            sparse.unlink()

    def test_urandom_invalid_utf8_reported_at_once(self):
        for cmd in ("embed", "tokenize"):
            with self.subTest(cmd=cmd), open("/dev/urandom", "rb") as rnd:
                p = tern(cmd, TEXT, "--text-file", "-", stdin=rnd, timeout=30)
                self.fails(p, "invalid UTF-8 at byte offset")

    def test_invalid_utf8_offset_and_line(self):
        f = TMP / "bad.txt"
        f.write_bytes(b"ok\nab\xffc\nnever read\n")
        for cmd in ("embed", "tokenize"):
            p = tern(cmd, TEXT, "--text-file", f)
            self.fails(p, "bad.txt:2: invalid UTF-8 at byte offset 5")
        # A sequence across a 64 KiB read boundary is fine; one cut by the end of the file is not
        # (line 2 starts at byte 65538: "tail " then E2 82 at 65543).
        f.write_bytes(b"x" * 65535 + b"\xc3\xa9\n" + b"tail \xe2\x82")
        self.fails(tern("tokenize", TEXT, "--text-file", f),
                   "bad.txt:2: invalid UTF-8 at byte offset 65543")
        # Overlong and surrogate forms are invalid too.
        for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
            f.write_bytes(b"a" + bad + b"\n")
            self.fails(tern("tokenize", TEXT, "--text-file", f), "invalid UTF-8 at byte offset 1")

    def test_keep_going_skips_a_line_of_invalid_utf8(self):
        f = TMP / "bad-kg.txt"
        f.write_bytes(b"ok\nab\xffc \xfe more bytes\nlast\n")
        out = TMP / "kg.jsonl"
        p = tern("embed", TEXT, "--text-file", f, "--pooling", "mean", "--keep-going", "-o", out)
        self.assertEqual(p.returncode, 1, err(p))
        self.assertIn("bad-kg.txt:2: invalid UTF-8 at byte offset 5", err(p))
        self.assertIn("1 of 3 inputs failed", err(p))
        got = [json.loads(line) for line in out.read_text().splitlines()]
        self.assertEqual([g["input"] for g in got], [f"{f}:1", f"{f}:3"])
        ref = json.loads(tern("embed", TEXT, "--text", "last", "--pooling", "mean").stdout)
        self.assertEqual(got[1]["embedding"], ref["embedding"])

    def test_line_cap_and_truncate(self):
        f = TMP / "long.txt"
        # Exactly the cap is fine; one byte more is an error naming the line.
        f.write_bytes(b"short\n" + b" " * (LINE_CAP - 1) + b"b\n")
        self.assertEqual(tern("tokenize", TEXT, "--text-file", f).returncode, 0)
        f.write_bytes(b"short\n" + b" " * LINE_CAP + b"b\n")
        self.fails(tern("tokenize", TEXT, "--text-file", f), "long.txt:2: the line is longer than")
        # --truncate keeps the first LINE_CAP bytes, cut back to a character boundary: here the
        # cap falls inside 'é', so the line keeps "b" only.
        f.write_bytes(b" " * (LINE_CAP - 2) + "bézzz\nnext\n".encode())
        p = tern("tokenize", TEXT, "--text-file", f, "--truncate")
        self.assertEqual(p.returncode, 0, err(p))
        ref = tern("tokenize", TEXT, "--text", "b", "next")
        self.assertEqual(p.stdout, ref.stdout)
        self.assertNotEqual(p.stdout, tern("tokenize", TEXT, "--text", "bézzz", "next").stdout)

    def test_bom_crlf_and_both_commands_agree(self):
        f = TMP / "crlf.txt"
        f.write_bytes(b"\xef\xbb\xbfhello world\r\nsecond line\r\n\xef\xbb\xbfthird")
        ref = tern("tokenize", TEXT, "--text", "hello world", "second line", "\ufeffthird")
        got = tern("tokenize", TEXT, "--text-file", f)
        self.assertEqual(got.returncode, 0, err(got))
        self.assertEqual(got.stdout, ref.stdout)
        a, b = TMP / "file.npy", TMP / "args.npy"
        p = tern("embed", TEXT, "--text-file", f, "--pooling", "mean", "-o", a)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(tern("embed", TEXT, "--text", "hello world", "second line", "\ufeffthird",
                              "--pooling", "mean", "-o", b).returncode, 0)
        np.testing.assert_array_equal(np.load(a), np.load(b))

    def test_fifo_streams(self):
        fifo = TMP / "texts.fifo"
        os.mkfifo(fifo)
        lines = [f"text number {i}" for i in range(300)]

        def writer():
            with open(fifo, "w") as w:
                for line in lines:
                    w.write(line + "\n")
                    w.flush()
        t = threading.Thread(target=writer)
        t.start()
        p = tern("embed", TEXT, "--text-file", fifo, "--pooling", "cls", "--batch", "7", timeout=60)
        t.join()
        self.assertEqual(p.returncode, 0, err(p))
        out = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual([o["input"] for o in out], [f"{fifo}:{i + 1}" for i in range(300)])

    def test_directory_refused(self):
        for cmd in ("embed", "tokenize"):
            self.fails(tern(cmd, TEXT, "--text-file", TMP), "is a directory")


class T04Threads(Base):
    """#4: thread counts over 8 x cores are refused; a thread that cannot be created is an error."""

    def test_over_the_maximum_is_refused_fast(self):
        cores = len(os.sched_getaffinity(0))
        ok = tern("embed", TEXT, "--text", "a", "--threads", 8 * cores)
        self.assertEqual(ok.returncode, 0, err(ok))
        for n in (8 * cores + 1, 50000, 10**12):
            t0 = time.monotonic()
            p = tern("embed", TEXT, "--text", "a", "--threads", n, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("--threads", err(p))
            self.assertLess(time.monotonic() - t0, 5)
        p = tern("embed", TEXT, "--text", "a", "--threads", 50000)
        self.assertIn("over the maximum", err(p))
        self.assertIn("8 x the", tern("embed", "--help").stdout.decode())
        # bench goes through the same pool limit.
        p = tern("bench", TEXT, "--threads", 8 * cores + 1, "--iters", "1", "--warmup", "0")
        self.assertNotEqual(p.returncode, 0)

    @unittest.skipIf(SANITIZED, "needs RLIMIT_AS, which ASan's shadow memory exceeds")
    def test_thread_creation_failure_is_an_error_not_a_hang(self):
        # Each thread's stack is RLIMIT_STACK (1 GiB here) inside a 4 GB address space: a few
        # threads fit, 8 * cores (>= 8) do not.
        def limit():
            resource.setrlimit(resource.RLIMIT_STACK, (1 << 30, 1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        cores = len(os.sched_getaffinity(0))
        p = tern("embed", TEXT, "--text", "a", "--threads", 8 * cores, preexec_fn=limit, timeout=60)
        self.fails(p, "cannot create worker thread")


class T05JsonUtf8(Base):
    """#5: every JSON line is valid UTF-8 JSON; invalid bytes in names become U+FFFD."""

    def test_invalid_bytes_in_image_names(self):
        d = TMP / "names"
        d.mkdir(exist_ok=True)
        raw = os.path.join(os.fsencode(d), b"\xff\"quo\\te\x01.png")
        shutil.copy(PNG, raw)
        jsonl = TMP / "names.jsonl"
        for p in (tern("embed", IMAGE, raw), tern("embed", IMAGE, d, "-o", jsonl)):
            self.assertEqual(p.returncode, 0, err(p))
        for data in (tern("embed", IMAGE, raw).stdout, jsonl.read_bytes()):
            line = data.decode("utf-8")  # strict: raises on invalid UTF-8
            obj = json.loads(line)
            self.assertTrue(obj["input"].endswith("\ufffd\"quo\\te\x01.png"), obj["input"])


class T06OneLineErrors(Base):
    """#6: errors stay on one line: control characters in names are escaped."""

    def test_newline_in_name(self):
        p = tern("embed", IMAGE, TMP / "a\nb\r\x1b[31m.png")
        msg = self.fails(p, "a\\nb\\r\\x1b[31m.png")
        self.assertNotIn("\x1b", msg)
        self.fails(tern("embed", TEXT, "--text-file", TMP / "x\ny.txt"), "x\\ny.txt")
        self.fails(tern("info", TMP / "m\n.tern"), "m\\n.tern")
        self.fails(tern("embed", TEXT, "--bad\noption"), "--bad\\noption")

    def test_keep_going_failures_one_line_each(self):
        bad = TMP / "bad\nname.png"
        bad.write_bytes(b"not an image")
        p = tern("embed", IMAGE, PNG, bad, "--keep-going")
        self.assertEqual(p.returncode, 1)
        lines = err(p).splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("bad\\nname.png", lines[0])


class T07DashDash(Base):
    """#7: `--` ends the options; '-5' is a value."""

    def test_negative_number_and_dashdash_texts(self):
        ids = lambda p: [json.loads(l)["ids"] for l in p.stdout.splitlines()]
        a = tern("tokenize", TEXT, "--text", "-5", "x")
        self.assertEqual(a.returncode, 0, err(a))
        b = tern("tokenize", TEXT, "--text", "--", "-x", "--y")
        self.assertEqual(b.returncode, 0, err(b))
        self.assertEqual(len(ids(b)), 2)
        self.assertEqual(ids(a)[0], ids(tern("tokenize", TEXT, "--text=-5"))[0])
        e = tern("embed", TEXT, "--text", "-5", "--", "-x", "--pooling", "cls")
        self.assertEqual(e.returncode, 0, err(e))
        self.assertEqual([json.loads(l)["input"] for l in e.stdout.splitlines()],
                         ["text 1", "text 2", "text 3", "text 4"])

    def test_dashdash_before_image_paths(self):
        d = TMP / "dash"
        d.mkdir(exist_ok=True)
        shutil.copy(PNG, d / "-f.png")
        p = tern("embed", IMAGE, "--", "-f.png", cwd=d)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(json.loads(p.stdout)["input"], "-f.png")
        self.fails(tern("embed", IMAGE, "-f.png", cwd=d), "unknown option -f.png")

    def test_option_values(self):
        out = TMP / "eq.npy"
        p = tern("embed", IMAGE, PNG, "--batch=2", f"--output={out}")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(np.load(out).shape, (1, 2048))
        self.fails(tern("embed", IMAGE, PNG, "--batch", "--quiet"), "--batch needs a value")
        self.fails(tern("embed", IMAGE, PNG, "--quiet=yes"), "--quiet takes no value")
        self.fails(tern("embed", IMAGE, PNG, "--batch", "0"), "--batch: 0 is out of range")
        self.fails(tern("embed", IMAGE, PNG, "--batch", "2x"), "expected an integer")
        self.fails(tern("embed", IMAGE, PNG, "--batch", "99999999999999999999"), "out of range")


class ApiOptions(Base):
    """The CLI passes the API's pooling names and layers through, with the API's errors."""

    def test_pooling_and_layer(self):
        p = tern("embed", TEXT, "--text", "a b", "--pooling", "max")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertEqual(json.loads(p.stdout)["shape"], [32])
        self.fails(tern("embed", IMAGE, PNG, "--pooling", "median"), "median")
        self.fails(tern("embed", IMAGE, PNG, "--layer", "nope"), "nope")
        p = tern("embed", TEXT, "--text", "a b", "--layer", "-1", "--pooling", "mean")
        self.assertEqual(p.returncode, 0, err(p))


class T08EarlyErrors(Base):
    """#8: each its own clear error, before the model loads (a missing model proves it)."""

    def test_before_the_model_loads(self):
        missing = TMP / "missing.tern"
        self.fails(tern("embed", missing, "--text", "a", "-o", ""), "-o: empty file name")
        self.fails(tern("embed", missing, "--text"), "--text needs at least one value")
        self.fails(tern("embed", missing, "--text", "--quiet"), "--text needs at least one value")
        self.fails(tern("tokenize", missing, "--text"), "--text needs at least one value")
        self.fails(tern("embed", missing), "no inputs given")
        self.fails(tern("embed", missing, "--text", "a", "-o", TMP), "is a directory")
        self.fails(tern("embed", missing, "--text", "a", "-o", TMP / "nodir" / "x.npy"),
                   "cannot write there")
        for cmd in ("embed", "tokenize"):
            p = tern(cmd, missing, "--text-file", "-", stdin=subprocess.DEVNULL, close_fds=True,
                     preexec_fn=lambda: os.close(0))
            self.fails(p, "standard input is closed")
            fd = os.open(TMP, os.O_RDONLY)
            try:
                self.fails(tern(cmd, missing, "--text-file", "-", stdin=fd),
                           "standard input is a directory")
            finally:
                os.close(fd)

    def test_empty_text_file(self):
        empty = TMP / "empty.txt"
        empty.write_bytes(b"")
        self.fails(tern("embed", TEXT, "--text-file", empty), "nothing to embed")
        p = tern("tokenize", TEXT, "--text-file", empty)
        self.assertEqual((p.returncode, p.stdout), (0, b""))


class T09Numbering(Base):
    """#9: one numbering (1-based) and one label per error."""

    def test_one_label(self):
        msg = self.fails(tern("embed", TEXT, "--text", "a", "b", "c", b"\xff"),
                         "text 4: invalid UTF-8")
        self.assertNotIn("text 1", msg)
        msg = self.fails(tern("tokenize", TEXT, "--text", "a", "b", "c", b"\xff"), "text 4: ")
        self.assertEqual(msg.count("text "), 1, msg)
        p = tern("bench", TEXT, "--seq-len", "513", "--iters", "1", "--warmup", "0")
        self.assertNotIn("text 0", err(p))
        self.assertIn("text 1", err(p))

    def test_keep_going_labels(self):
        long_text = " ".join(["word"] * 600)
        p = tern("embed", TEXT, "--text", "ok", long_text, "fine", "--keep-going",
                 "--pooling", "cls")
        self.assertEqual(p.returncode, 1)
        self.assertIn("failed: text 2: ", err(p))
        self.assertNotIn("text 1", err(p))
        self.assertEqual(err(p).count("text 2"), 1, err(p))
        self.assertEqual([json.loads(l)["input"] for l in p.stdout.splitlines()],
                         ["text 1", "text 3"])


class T10MaxLength(Base):
    """#10: one --max-length rule for every command: 2 up to the model's limit."""

    def test_one_rule(self):
        for cmd in ("embed", "tokenize"):
            for bad in ("0", "1", "-3"):
                with self.subTest(cmd=cmd, n=bad):
                    self.fails(tern(cmd, TEXT, "--text", "a", "--max-length", bad),
                               f"--max-length {bad} is out of range")
            self.fails(tern(cmd, TEXT, "--text", "a", "--max-length", "513"),
                       "(2..512, the model's limit)")
            p = tern(cmd, TEXT, "--text", "a b c", "--max-length", "512")
            self.assertEqual(p.returncode, 0, err(p))
        p = tern("tokenize", TEXT, "--text", "a b c d", "--max-length", "3", "--truncate")
        self.assertEqual(len(json.loads(p.stdout)["ids"]), 3)


class T11ImageSide(Base):
    """#11: an image over 16384 pixels a side names the limit."""

    def test_wide_png_and_jpeg(self):
        wide = TMP / "wide.png"
        Image.fromarray(np.zeros((1, 16385, 3), dtype=np.uint8)).save(wide)
        self.fails(tern("embed", IMAGE, wide), "over the side limit of 16384 pixels")
        tall = TMP / "tall.jpg"
        # PIL cannot write a JPEG side over 65500, but 16385 is fine.
        Image.fromarray(np.zeros((16385, 1, 3), dtype=np.uint8)).save(tall, quality=50)
        self.fails(tern("embed", IMAGE, tall), "over the side limit of 16384 pixels")


class T12Umask(Base):
    """#12: a new -o file honours the umask; an existing file keeps its mode."""

    def run_with_umask(self, mask: int, out: Path):
        return tern("embed", IMAGE, PNG, "-o", out, preexec_fn=lambda: os.umask(mask))

    def test_modes(self):
        for mask, ext in ((0o027, "npy"), (0o000, "jsonl"), (0o077, "npy")):
            out = TMP / f"mode{mask:o}.{ext}"
            if out.exists():
                out.unlink()
            p = self.run_with_umask(mask, out)
            self.assertEqual(p.returncode, 0, err(p))
            self.assertEqual(stat.S_IMODE(out.stat().st_mode), 0o666 & ~mask)
        existing = TMP / "existing.npy"
        existing.write_bytes(b"old")
        os.chmod(existing, 0o600)
        self.assertEqual(self.run_with_umask(0o000, existing).returncode, 0)
        self.assertEqual(stat.S_IMODE(existing.stat().st_mode), 0o600)
        self.assertEqual(np.load(existing).shape, (1, 2048))


class T13DirectorySkips(Base):
    """#13: what a directory walk skips is counted on stderr."""

    def test_skipped_entries_counted(self):
        d = TMP / "tree"
        (d / "sub").mkdir(parents=True, exist_ok=True)
        shutil.copy(PNG, d / "sub" / "one.png")
        shutil.copy(PNG, d / "two.PNG")
        (d / "linkdir").symlink_to(d / "sub")
        (d / "dangling.png").symlink_to(d / "nowhere.png")
        (d / "linkfile.jpg").symlink_to(d / "two.PNG")
        os.mkfifo(d / "fifo.png")
        (d / "notes.txt").write_text("ignored by name")
        p = tern("embed", IMAGE, d, "--pooling", "mean", timeout=60)
        self.assertEqual(p.returncode, 0, err(p))
        names = [json.loads(l)["input"] for l in p.stdout.splitlines()]
        self.assertEqual(names, [str(d / "linkfile.jpg"), str(d / "sub" / "one.png"),
                                 str(d / "two.PNG")])
        self.assertIn("skipped 3 entries", err(p))
        for what in ("1 symlinked directory", "1 dangling symlink",
                     "1 image name that is not a regular file"):
            self.assertIn(what, err(p))


if __name__ == "__main__":
    unittest.main(verbosity=2)
