"""`tern serve` end to end: results equal `tern embed`, through curl and the official `openai` npm
client; 16 concurrent clients batched together; 429 under overload; API keys; SIGTERM."""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_testlib import Server, raw_exchange  # noqa: E402
from tern_testlib import ROOT, export, tern  # noqa: E402

OPENAI_VERSION = "6.30.1"
NODE_CACHE = ROOT / "tests" / ".cache" / "node"

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hex "
         "jovial zebras near the old riverbank , and ! naïve café résumé 東京 😀").split()


def sentences(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def tern_embed(model, texts, *opts):
    """tern embed --text ... -> float32 array (pooled: [N, D]; --pooling none, 1 text: [T, D])."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.npy"
        tern("embed", model, "--text", *texts, *opts, "-o", out)
        return np.load(out)


def install_openai():
    """npm install openai into tests/.cache/node once: (dir, "") or (None, why)."""
    pkg = NODE_CACHE / "node_modules" / "openai" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == OPENAI_VERSION:
        return NODE_CACHE, ""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node/npm are not installed"
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        p = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--no-save", "--prefix", str(NODE_CACHE), f"openai@{OPENAI_VERSION}"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "npm install timed out (registry unreachable?)"
    if p.returncode != 0 or not pkg.exists():
        return None, "npm install failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    return NODE_CACHE, ""


class TextServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-serve-"))
        # Small random DistilBERT with the real bert-base-cased vocabulary: fast under ASan too.
        cls.model = export("distilbert", cls.tmp / "bert.tern", "--layers", "2", "--dim", "128",
                           "--heads", "4", "--hidden-dim", "256")
        cls.server = Server(cls.model, "--threads", "2", "--model-name", "tiny-bert")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop(signal.SIGTERM)
        cls.server.__exit__()
        shutil.rmtree(cls.tmp)
        assert rc == 0, f"tern serve exited {rc} on SIGTERM:\n" + "".join(cls.server.stderr_lines)

    def test_embed_equals_tern_embed(self):
        texts = ["Hello, world!", "", "naïve café 東京 😀", *sentences(5, 1)]
        want = tern_embed(self.model, texts, "--pooling", "mean", "--normalize")
        status, got = self.server.post("/embed", {"inputs": texts})
        self.assertEqual(status, 200, got)
        got = np.asarray(got, dtype=np.float32)
        self.assertEqual(got.shape, want.shape)
        # Every float printed in its shortest round-trip form: bit-identical, whatever the batch.
        np.testing.assert_array_equal(got, want)
        status, one = self.server.post("/embed", {"inputs": "Hello, world!", "normalize": False})
        self.assertEqual(status, 200, one)
        want_one = tern_embed(self.model, ["Hello, world!"], "--pooling", "mean")
        np.testing.assert_array_equal(np.asarray(one, np.float32), want_one)

    def test_embed_all_is_per_token(self):
        status, got = self.server.post("/embed_all", {"inputs": ["Hello, world!"]})
        self.assertEqual(status, 200, got)
        want = tern_embed(self.model, ["Hello, world!"], "--pooling", "none")
        got = np.asarray(got[0], dtype=np.float32)
        self.assertEqual(got.shape, (6, 128))
        np.testing.assert_array_equal(got, want)

    def test_dimensions_truncate_and_renormalise(self):
        status, got = self.server.post("/v1/embeddings", {"input": "Hello", "dimensions": 16})
        self.assertEqual(status, 200, got)
        v = np.asarray(got["data"][0]["embedding"], np.float64)
        self.assertEqual(v.shape, (16,))
        full = tern_embed(self.model, ["Hello"], "--pooling", "mean")[0][:16].astype(np.float64)
        np.testing.assert_allclose(v, full / np.linalg.norm(full), rtol=1e-6, atol=1e-7)
        status, err = self.server.post("/v1/embeddings", {"input": "Hello", "dimensions": 129})
        self.assertEqual(status, 422)
        self.assertIn("dimensions", err["error"]["message"])

    def test_tokenize_equals_tern_tokenize(self):
        texts = ["Hello, world!", "naïve café [MASK] 東京"]
        want = [json.loads(line)["ids"] for line in
                tern("tokenize", self.model, "--text", *texts).stdout.splitlines()]
        status, got = self.server.post("/tokenize", {"inputs": texts})
        self.assertEqual(status, 200, got)
        self.assertEqual([[t["id"] for t in toks] for toks in got], want)
        hello = got[0]
        self.assertEqual([t["text"] for t in hello], ["[CLS]", "Hello", ",", "world", "!", "[SEP]"])
        self.assertEqual([(t["start"], t["stop"]) for t in hello[1:-1]],
                         [(0, 5), (5, 6), (7, 12), (12, 13)])
        self.assertTrue(hello[0]["special"] and hello[-1]["special"])

    def test_curl_and_openai_client(self):
        texts = ["Hello, world!", *sentences(3, 2)]
        want = tern_embed(self.model, texts, "--pooling", "mean", "--normalize")
        ntokens = sum(len(json.loads(line)["ids"]) for line in
                      tern("tokenize", self.model, "--text", *texts).stdout.splitlines())
        if shutil.which("curl"):
            p = subprocess.run(["curl", "-sS", "--fail-with-body", "-X", "POST",
                                f"{self.server.url}/v1/embeddings", "-H",
                                "Content-Type: application/json", "-d",
                                json.dumps({"input": texts, "model": "tiny-bert"})],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            body = json.loads(p.stdout)
            self.assertEqual(body["object"], "list")
            self.assertEqual(body["usage"], {"prompt_tokens": ntokens, "total_tokens": ntokens})
            got = np.asarray([d["embedding"] for d in body["data"]], np.float32)
            np.testing.assert_array_equal(got, want)
            p = subprocess.run(["curl", "-sS", "-X", "POST", f"{self.server.url}/embed", "-d",
                                json.dumps({"inputs": texts[0]})], capture_output=True, text=True)
            np.testing.assert_array_equal(np.asarray(json.loads(p.stdout), np.float32), want[:1])
        node_dir, why = install_openai()
        if node_dir is None:
            self.skipTest("openai npm client unavailable: " + why)
        p = subprocess.run(["node", str(Path(__file__).with_name("server_openai_client.mjs")),
                            str(node_dir), f"{self.server.url}/v1", "tiny-bert", json.dumps(texts)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertNotIn("error", out, out)
        self.assertEqual(out["index"], list(range(len(texts))))
        self.assertEqual(out["usage"], {"prompt_tokens": ntokens, "total_tokens": ntokens})
        self.assertEqual(out["model"], "tiny-bert")
        for form in ("float", "base64", "default"):
            np.testing.assert_array_equal(np.asarray(out[form], np.float32), want, err_msg=form)

    def test_16_concurrent_clients_batched(self):
        pool = sentences(60, 3) + ["Hello, world!", "x"]
        want = tern_embed(self.model, pool, "--pooling", "mean", "--normalize")
        before = self.server.metrics()
        rng = random.Random(4)
        plans = [[rng.sample(range(len(pool)), rng.randint(1, 6)) for _ in range(50)]
                 for _ in range(16)]

        def client(plan):
            bad = []
            for idx in plan:
                route = rng.choice(["/embed", "/v1/embeddings"])
                texts = [pool[i] for i in idx]
                body = {"inputs": texts} if route == "/embed" else {"input": texts}
                status, got = self.server.post(route, body)
                if status != 200:
                    bad.append((route, status, got))
                    continue
                vecs = got if route == "/embed" else [d["embedding"] for d in got["data"]]
                if not np.array_equal(np.asarray(vecs, np.float32), want[idx]):
                    bad.append((route, "wrong vectors", idx))
            return bad

        with ThreadPoolExecutor(16) as ex:
            failures = [f for bad in ex.map(client, plans) for f in bad]
        self.assertEqual(failures, [])
        after = self.server.metrics()
        batches = after["tern_batch_size_count"] - before.get("tern_batch_size_count", 0)
        singles = (after['tern_batch_size_bucket{le="1"}']
                   - before.get('tern_batch_size_bucket{le="1"}', 0))
        inputs = sum(len(idx) for plan in plans for idx in plan)
        self.assertEqual(after["tern_inputs_total"] - before["tern_inputs_total"], inputs)
        self.assertGreater(batches - singles, 0, "no forward pass held more than one input")
        # Dynamic batching merged requests: fewer forward passes than requests.
        self.assertLess(batches, 16 * 50)

    def test_command_line_errors(self):
        for args, code, needle in [
            (["--port", "http"], 2, "--port"),
            (["--pooling", "none"], 2, "/embed_all"),
            (["--max-batch-tokens", "100"], 2, "512"),
            (["--bogus"], 2, "--bogus"),
            (["--port", str(self.server.port)], 1, "cannot listen"),
        ]:
            p = tern("serve", self.model, *args, check=False, timeout=60)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(needle, p.stderr)
        p = tern("serve", self.tmp / "missing.tern", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("missing.tern", p.stderr)

    def test_api_key(self):
        with Server(self.model, "--threads", "1", "--api-key", "s3cret") as s:
            status, err = s.post("/embed", {"inputs": "a"})
            self.assertEqual((status, err["error_type"]), (401, "unauthorized"))
            status, err = s.post("/v1/embeddings", {"input": "a"},
                                 headers={"Authorization": "Bearer s3cre"})
            self.assertEqual(status, 401)
            self.assertEqual(err["error"]["code"], "invalid_api_key")
            self.assertEqual(s.request("GET", "/health")[0], 200)
            self.assertEqual(s.request("GET", "/metrics")[0], 401)
            status, got = s.post("/embed", {"inputs": "a"},
                                 headers={"Authorization": "Bearer s3cret"})
            self.assertEqual(status, 200, got)
            # Refused before its body was read: the body is skipped and the connection goes on.
            body = b'{"inputs": "a"}'
            req = b"POST /embed HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s"
            raw = raw_exchange(s.port, req % (b"", len(body), body)
                               + req % (b"Authorization: Bearer s3cret\r\nConnection: close\r\n",
                                        len(body), body))
            self.assertEqual(re.findall(rb"HTTP/1\.1 (\d{3})", raw), [b"401", b"200"], raw[:300])
            self.assertEqual(s.stop(), 0)

    def test_overload_gives_429_then_serves(self):
        long_text = " ".join(sentences(1, 5)[0] for _ in range(8))
        with Server(self.model, "--threads", "1", "--max-concurrent-requests", "2",
                    "--max-batch-tokens", "0") as s:
            def one(i):
                route = "/v1/embeddings" if i % 2 else "/embed"
                body = {"input": [long_text] * 8} if i % 2 else {"inputs": [long_text] * 8}
                return route, *s.post(route, body, headers={"Connection": "close"})

            with ThreadPoolExecutor(24) as ex:
                results = list(ex.map(one, range(24)))
            codes = [r[1] for r in results]
            self.assertIn(429, codes)
            self.assertIn(200, codes)
            self.assertTrue(set(codes) <= {200, 429}, codes)
            for route, status, body in results:
                if status == 429 and route == "/embed":
                    self.assertEqual(body["error_type"], "overloaded")
                elif status == 429:
                    self.assertEqual(body["error"]["type"], "rate_limit_error")
            status, got = s.post("/embed", {"inputs": ["Hello, world!"]})
            self.assertEqual(status, 200, got)
            np.testing.assert_array_equal(
                np.asarray(got, np.float32),
                tern_embed(self.model, ["Hello, world!"], "--pooling", "mean", "--normalize"))
            self.assertGreater(s.metrics()['tern_errors_total{kind="overloaded"}'], 0)
            self.assertEqual(s.stop(), 0)

    def test_sigterm_finishes_requests_in_flight(self):
        text = " ".join(sentences(1, 6)[0] for _ in range(4))
        with Server(self.model, "--threads", "1") as s:
            results = []

            def call():
                results.append(s.post("/embed", {"inputs": [text] * 32}))

            threads = [threading.Thread(target=call) for _ in range(3)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while s.metrics()["tern_requests_in_flight"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(s.stop(signal.SIGTERM), 0)
            for t in threads:
                t.join()
            self.assertEqual([r[0] for r in results], [200, 200, 200], results)
            self.assertTrue(all(len(r[1]) == 32 for r in results))
            self.assertTrue(any("SIGTERM" in line for line in s.stderr_lines))


class VitServerTest(unittest.TestCase):
    """An image transformer: /embed pools as `tern embed` does (cls), /embed_all gives every
    token, and --pooling mean follows `tern embed --pooling mean`."""

    @classmethod
    def setUpClass(cls):
        from PIL import Image
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-serve-vit-"))
        cls.model = export("vit_b_16", cls.tmp / "vit.tern", "--layers", "1", "--heads", "2",
                           "--hidden-dim", "64", "--mlp-dim", "128", "--patch-size", "32")
        cls.png = cls.tmp / "a.png"
        rng = np.random.default_rng(1)
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(cls.png)
        cls.b64 = base64.b64encode(cls.png.read_bytes()).decode()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def embed(self, *opts):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "out.npy"
            tern("embed", self.model, self.png, *opts, "-o", out)
            return np.load(out)

    def test_pooling_and_tokens(self):
        with Server(self.model, "--threads", "2") as s:
            inputs = [self.b64, "data:image/png;base64," + self.b64]
            status, got = s.post("/embed", {"inputs": inputs})
            self.assertEqual(status, 200, got)
            want = self.embed("--normalize")
            np.testing.assert_array_equal(np.asarray(got, np.float32), np.vstack([want, want]))
            status, got = s.post("/embed_all", {"inputs": self.b64})
            self.assertEqual(status, 200, got)
            tokens = np.asarray(got[0], np.float32)
            self.assertEqual(tokens.shape, (1 + (224 // 32) ** 2, 64))
            want_tokens = self.embed("--pooling", "none").reshape(tokens.shape)
            np.testing.assert_array_equal(tokens, want_tokens)
            self.assertEqual(s.stop(), 0)
        with Server(self.model, "--threads", "2", "--pooling", "mean") as s:
            status, got = s.post("/v1/embeddings", {"input": self.b64})
            self.assertEqual(status, 200, got)
            np.testing.assert_array_equal(np.asarray([got["data"][0]["embedding"]], np.float32),
                                          self.embed("--pooling", "mean", "--normalize"))
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
