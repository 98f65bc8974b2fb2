"""`tern serve` under bad input: each bad request gets its error in the route's shape, and the
server keeps serving correct answers (checked after every one). Image models: base64 and data:
URLs equal `tern embed`; broken base64, URLs, paths and a decompression-bomb PNG are refused."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_testlib import Server, raw_exchange, status_of  # noqa: E402
from tern_testlib import ROOT, export, tern  # noqa: E402


def tern_embed(model, inputs, *opts):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.npy"
        tern("embed", model, *inputs, *opts, "-o", out)
        return np.load(out)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width, height) -> bytes:
    """A grayscale PNG of zeros: width x height pixels in a few hundred KB of zlib."""
    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-serve-bad-"))
        cls.model = export("distilbert", cls.tmp / "bert.tern", "--layers", "1", "--dim", "64",
                           "--heads", "2", "--hidden-dim", "128")
        cls.want = tern_embed(cls.model, ["--text", "Hello, world!"], "--pooling", "mean",
                              "--normalize")
        cls.server = Server(cls.model, "--threads", "1", "--payload-limit", "200000",
                            "--client-timeout", "2", "--max-client-batch-size", "16",
                            "--max-connections", "8")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        cls.server.__exit__()
        shutil.rmtree(cls.tmp)
        assert rc == 0, "".join(cls.server.stderr_lines)

    def still_serving(self):
        self.assertTrue(self.server.alive(), "".join(self.server.stderr_lines))
        status, got = self.server.post("/embed", {"inputs": ["Hello, world!"]})
        self.assertEqual(status, 200, got)
        np.testing.assert_array_equal(np.asarray(got, np.float32), self.want)

    def expect(self, route, body, status, kind, field=None, headers=None):
        got_status, got = self.server.post(route, body, headers=headers)
        self.assertEqual(got_status, status, (route, body if len(str(body)) < 200 else "...", got))
        if route.startswith("/v1/"):
            self.assertEqual(set(got["error"]), {"message", "type", "code"})
            self.assertEqual(got["error"]["code"], kind)
            message = got["error"]["message"]
        else:
            self.assertEqual(got["error_type"], kind, got)
            message = got["error"]
        self.assertNotIn("\n", message)
        if field:
            self.assertIn(field, message)
        self.still_serving()
        return message

    def test_malformed_and_truncated_json(self):
        for body in ['{"inputs": ', '{"inputs": "a",}', "not json", "", '{"inputs": "a"} x',
                     "[" * 100000, '{"inputs": ["a", "b"', '{"inputs": "a", "dimensions": 1e999}']:
            for route in ("/embed", "/v1/embeddings", "/tokenize", "/embed_all"):
                kind = "validation"
                m = self.expect(route, body, 400, kind)
                self.assertIn("JSON", m)

    def test_wrong_types_name_the_field(self):
        cases = [
            ("/embed", {"inputs": 5}, "inputs"),
            ("/embed", {"inputs": ["a", 3]}, "inputs[1]"),
            ("/embed", {"inputs": "a", "normalize": "yes"}, "normalize"),
            ("/embed", {"inputs": "a", "truncate": 1}, "truncate"),
            ("/embed", {"text": "a"}, "inputs"),
            ("/embed", ["a"], "body"),
            ("/embed", {"inputs": "a", "truncation_direction": "left"}, "truncation_direction"),
            ("/v1/embeddings", {"input": [[1, 2], "a"]}, "input[1]"),
            ("/v1/embeddings", {"input": [1.5]}, "input[0]"),
            ("/v1/embeddings", {"input": [-1]}, "input[0]"),
            ("/v1/embeddings", {"input": "a", "encoding_format": "int8"}, "encoding_format"),
            ("/v1/embeddings", {"input": "a", "dimensions": 0}, "dimensions"),
            ("/v1/embeddings", {"input": "a", "model": 3}, "model"),
            ("/v1/embeddings", {"input": {"a": 1}}, "input"),
            ("/tokenize", {"inputs": [None]}, "inputs[0]"),
        ]
        for route, body, field in cases:
            kind = "validation"
            self.expect(route, body, 422, kind, field)

    def test_invalid_utf8(self):
        for route in ("/embed", "/v1/embeddings"):
            key = "input" if route.startswith("/v1") else "inputs"
            body = b'{"' + key.encode() + b'": ["ok", "bad \xff\xfe here"]}'
            m = self.expect(route, body, 400, "validation")
            self.assertIn("UTF-8", m)

    def test_empty_and_huge_inputs(self):
        self.expect("/embed", {"inputs": []}, 422, "validation", "empty")
        self.expect("/v1/embeddings", {"input": []}, 422, "validation", "empty")
        self.expect("/v1/embeddings", {"input": [[]]}, 422, "validation", "empty")
        self.expect("/embed", {"inputs": ["a"] * 17}, 422, "validation", "17")
        self.expect("/v1/embeddings", {"input": [[101, 102]] * 1000}, 422, "validation", "1000")
        long_text = "word " * 600
        self.expect("/embed", {"inputs": long_text}, 422, "validation", "512")
        self.expect("/v1/embeddings", {"input": [101] + [1000] * 600 + [102]}, 422, "validation",
                    "512")
        self.expect("/v1/embeddings", {"input": [101, 10 ** 9, 102]}, 422, "validation",
                    "vocabulary")
        status, got = self.server.post("/embed", {"inputs": long_text, "truncate": True})
        self.assertEqual(status, 200, got)
        self.assertEqual(len(got), 1)

    def test_oversized_body(self):
        big = {"inputs": ["x" * 1000] * 300}  # 300 KB > --payload-limit 200000
        self.expect("/embed", big, 413, "payload", "200000")
        self.expect("/v1/embeddings", {"input": big["inputs"]}, 413, "payload")
        # Chunked, so no Content-Length to refuse up front: cut off while reading.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        chunks = (json.dumps(big)[i:i + 8192].encode() for i in range(0, 310000, 8192))
        conn.request("POST", "/embed", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.read())["error_type"], "payload")
        conn.close()
        self.still_serving()

    def test_slow_loris_is_cut_off(self):
        request = (b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 20\r\n\r\n{\"inputs\": \"Hello\"}")
        results = {}

        def slow():
            t0 = time.monotonic()
            results["raw"] = raw_exchange(self.server.port, request, timeout=20, pace=0.2)
            results["seconds"] = time.monotonic() - t0

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        self.still_serving()  # others are served meanwhile
        t.join()
        # --client-timeout 2: the whole request must arrive in 2 s; it would take 0.2 * 120 s.
        self.assertLess(results["seconds"], 10)
        self.assertIn(status_of(results["raw"]), (0, 408))
        # A slow body after quick headers, too.
        head = (b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=20)
        s.sendall(head + b'{"inputs": ')
        t0 = time.monotonic()
        data = s.recv(65536)
        s.close()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn(status_of(data), (0, 408))
        self.still_serving()

    def test_header_flood_and_caps(self):
        many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 100) for i in range(300))  # ~33 KB
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
        raw = raw_exchange(self.server.port, head + many + b"\r\n")
        self.assertEqual(status_of(raw), 431, raw[:200])
        self.assertIn(b'"error_type":"payload"', raw)
        self.still_serving()
        status, got = self.server.request("GET", "/nope")
        self.assertEqual((status, got["error_type"]), (404, "not_found"))
        status, got = self.server.post("/v1/nope", {"input": "a"})
        self.assertEqual((status, got["error"]["code"]), (404, "not_found"))
        status, got = self.server.request("DELETE", "/embed")
        self.assertEqual(status, 404)
        self.still_serving()

    def test_keep_alive_after_errors(self):
        """A refused request's body is skipped, so the next request on the connection is read
        from its first byte; a connection whose stream cannot be trusted is closed."""
        ok = json.dumps({"inputs": "Hello"}).encode()

        def post(path, body, extra=b""):
            return (b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (path, extra, len(body), body))

        # 422, then a good request, pipelined on one connection: both answered.
        raw = raw_exchange(self.server.port, post(b"/embed", b'{"inputs": []}')
                           + post(b"/tokenize", ok) + b"GET /health HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\n\r\n")
        self.assertEqual([int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3})", raw)], [422, 200, 200])
        # A body over the limit, or a malformed request: answered, then the connection is closed
        # (what follows is not parsed as a request).
        for first in (post(b"/embed", b"x" * 200001), b"GARBAGE\r\n\r\n",
                      post(b"/unknown", b"{}")):
            raw = raw_exchange(self.server.port, first + post(b"/tokenize", ok))
            codes = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3})", raw)]
            self.assertEqual(len(codes), 1, raw[:300])
            self.assertIn(codes[0], (413, 400, 404))
            self.assertIn(b"Connection: close", raw)
        # No Content-Length and not chunked: no body (answered at once, not after a timeout).
        t0 = time.monotonic()
        raw = raw_exchange(self.server.port, b"POST /embed HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\n\r\n")
        self.assertEqual(status_of(raw), 400, raw[:300])
        self.assertLess(time.monotonic() - t0, 1.5)
        self.still_serving()

    def test_connection_cap(self):
        idle = [socket.create_connection(("127.0.0.1", self.server.port)) for _ in range(8)]
        time.sleep(0.3)
        extra = raw_exchange(self.server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status_of(extra), 503, extra[:200])
        for s in idle:
            s.close()
        time.sleep(0.3)
        self.still_serving()
        self.assertGreater(self.server.metrics()["tern_rejected_connections_total"], 0)

    def test_fuzz_regressions_over_http(self):
        """tests/fuzz/regressions/server_request_fuzz: first byte = route (see the target)."""
        routes = ["/embed", "/embed_all", "/v1/embeddings", "/tokenize"]
        d = ROOT / "tests" / "fuzz" / "regressions" / "server_request_fuzz"
        files = sorted(d.iterdir())
        self.assertTrue(files)
        for f in files:
            data = f.read_bytes()
            if data[0] & 7 >= 4:  # an image input: the text model refuses it as a text, fine
                body = json.dumps({"inputs": [data[1:].decode("latin-1")]})
                route = "/embed"
            else:
                body, route = data[1:], routes[data[0] & 3]
            status, got = self.server.post(route, body,
                                           headers={"Content-Type": "application/json"})
            self.assertIn(status, (200, 400, 422), (f.name, got))
            self.assertIsInstance(got, (dict, list), f.name)
            self.still_serving()

    def test_tokenize_limits(self):
        self.expect("/tokenize", {"inputs": "word " * 600}, 422, "validation", "512")
        self.expect("/tokenize", {"inputs": ["a"] * 17}, 422, "validation", "17")
        status, got = self.server.post("/tokenize", {"inputs": "a b", "add_special_tokens": False})
        self.assertEqual((status, [t["text"] for t in got[0]]), (200, ["a", "b"]))


class ManyConnectionsTest(unittest.TestCase):
    """Idle connections wait in one epoll thread, not in workers: thousands of them do not keep
    other clients waiting. A client that disconnects mid-response costs nothing either."""

    def test_idle_connections_and_disconnects(self):
        tmp = Path(tempfile.mkdtemp(prefix="tern-serve-conn-"))
        try:
            model = export("distilbert", tmp / "bert.tern", "--layers", "1", "--dim", "64",
                           "--heads", "2", "--hidden-dim", "128")
            want = tern_embed(model, ["--text", "Hello, world!"], "--pooling", "mean",
                              "--normalize")
            with Server(model, "--threads", "1", "--max-connections", "9100") as s:
                idle = []
                try:
                    for _ in range(9000):
                        idle.append(socket.create_connection(("127.0.0.1", s.port)))
                    deadline = time.monotonic() + 30
                    while (s.metrics()["tern_open_connections"] < 9000
                           and time.monotonic() < deadline):
                        time.sleep(0.05)
                    self.assertGreaterEqual(s.metrics()["tern_open_connections"], 9000)
                    t0 = time.monotonic()
                    status, got = s.post("/embed", {"inputs": ["Hello, world!"]})
                    self.assertEqual(status, 200, got)
                    np.testing.assert_array_equal(np.asarray(got, np.float32), want)
                    self.assertLess(time.monotonic() - t0, 5)
                finally:
                    for c in idle:
                        c.close()
                # Clients that send a request for a large answer and leave at once.
                body = json.dumps({"inputs": ["word " * 50] * 8}).encode()
                req = b"POST /embed_all HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                for _ in range(5):
                    c = socket.create_connection(("127.0.0.1", s.port))
                    c.sendall(req % (len(body), body))
                    c.close()
                status, got = s.post("/embed", {"inputs": ["Hello, world!"]})
                self.assertEqual(status, 200, got)
                np.testing.assert_array_equal(np.asarray(got, np.float32), want)
                # Their requests still run (slowly under sanitizers), then their sockets close.
                # (Each reading is its own connection, and the one before may not be closed on
                # the server's side yet: the reading that ends the wait is the one checked.)
                deadline = time.monotonic() + 120
                while (open_now := s.metrics()["tern_open_connections"]) > 1 and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertLessEqual(open_now, 1)
                self.assertEqual(s.stop(), 0)
        finally:
            shutil.rmtree(tmp)


class ImageServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-serve-img-"))
        cls.model = export("resnet50", cls.tmp / "r50.tern", "--layers", "1,1,1,1")
        rng = np.random.default_rng(0)
        cls.pngs = []
        for i, size in enumerate([(64, 48), (300, 200)]):
            p = cls.tmp / f"img{i}.png"
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(p)
            cls.pngs.append(p)
        cls.want = tern_embed(cls.model, cls.pngs, "--normalize")
        cls.server = Server(cls.model, "--threads", "2", "--max-client-batch-size", "8")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        cls.server.__exit__()
        shutil.rmtree(cls.tmp)
        assert rc == 0, "".join(cls.server.stderr_lines)

    def still_serving(self):
        b64 = base64.b64encode(self.pngs[0].read_bytes()).decode()
        status, got = self.server.post("/embed", {"inputs": [b64]})
        self.assertEqual(status, 200, got)
        np.testing.assert_array_equal(np.asarray(got, np.float32), self.want[:1])

    def test_base64_and_data_urls_equal_tern_embed(self):
        b64 = [base64.b64encode(p.read_bytes()).decode() for p in self.pngs]
        inputs = [b64[0], "data:image/png;base64," + b64[1]]
        status, got = self.server.post("/embed", {"inputs": inputs})
        self.assertEqual(status, 200, got)
        np.testing.assert_array_equal(np.asarray(got, np.float32), self.want)
        status, got = self.server.post("/v1/embeddings", {"input": b64, "model": "r50"})
        self.assertEqual(status, 200, got)
        np.testing.assert_array_equal(
            np.asarray([d["embedding"] for d in got["data"]], np.float32), self.want)
        self.assertEqual(got["usage"]["prompt_tokens"], 2 * 197)
        status, err = self.server.post("/embed_all", {"inputs": b64[0]})
        self.assertEqual(status, 422, err)

    def test_bad_images(self):
        png = self.pngs[0].read_bytes()
        cases = [
            ("not base64 !!!", "base64"),
            ("QUJD=", "base64"),
            (base64.b64encode(b"GIF89a" + b"\0" * 40).decode(), "GIF"),
            (base64.b64encode(png[: len(png) // 2]).decode(), ""),
            ("http://example.com/cat.png", "URL"),
            ("file:///etc/passwd", "URL"),
            ("/etc/passwd", "URL"),
            ("data:text/plain;base64,aGVsbG8=", "image/*"),
            ("data:image/png,rawbytes", "base64"),
            ("", "empty"),
            (base64.b64encode(bomb_png(20000, 100)).decode(), ""),   # over 16384 a side
            (base64.b64encode(bomb_png(12000, 6000)).decode(), ""),  # 72 M pixels > 64 Mi
        ]
        for value, needle in cases:
            status, got = self.server.post("/embed", {"inputs": [value]})
            self.assertEqual(status, 422, (value[:60], got))
            self.assertEqual(got["error_type"], "validation")
            self.assertIn("inputs[0]", got["error"])
            if needle:
                self.assertIn(needle, got["error"])
            self.still_serving()
        status, got = self.server.post("/tokenize", {"inputs": "a"})
        self.assertEqual(status, 422, got)


if __name__ == "__main__":
    unittest.main()
