"""`tern serve` on a sentence-transformers file: the file's defaults (its pooling, Dense, Normalize,
default prompt with include_prompt = false, max_seq_length) apply to /embed and /v1/embeddings as
they do to `tern embed` with no flags: the same vectors."""

from __future__ import annotations

import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

import bert_testlib as bt
from server_testlib import Server
from tern_testlib import PYTHON, ROOT, run, tern

TMP = Path(tempfile.mkdtemp(prefix="tern-serve-st-"))
TEXTS = ["what is the capital of france", "a second, somewhat longer query about embeddings"]


def setUpModule():
    global MODEL
    state = bt.random_bert(bt.TINY, bt.VOCAB_UNCASED, seed=11)
    dense = bt.random_dense(bt.TINY["hidden_size"], 24, True, "tanh", seed=12)
    d = bt.write_st_dir(TMP / "st", lambda p: bt.write_hf_dir(
        p, state, bt.TINY, bt.VOCAB_UNCASED, tokenizer_config={"do_lower_case": True}),
        pooling="mean", include_prompt=False, dense=[dense], normalize=True, max_seq_length=16,
        prompts={"query": "query: "}, default_prompt="query")
    MODEL = TMP / "st.tern"
    run([PYTHON, ROOT / "weights_tools" / "export.py", "bert", d, "-o", MODEL])


def tearDownModule():
    shutil.rmtree(TMP)


class SentenceTransformerDefaults(unittest.TestCase):
    def test_server_gives_what_tern_embed_gives(self):
        out = TMP / "ref.npy"
        tern("embed", MODEL, "--text", *TEXTS, "--truncate", "-q", "-o", out)
        want = np.load(out)
        server = Server(MODEL)
        try:
            status, body = server.request("POST", "/embed", {"inputs": TEXTS, "truncate": True})
            self.assertEqual(status, 200, body)
            np.testing.assert_array_equal(np.array(body, dtype=np.float32), want)
            status, body = server.request("POST", "/v1/embeddings",
                                          {"input": TEXTS[0], "model": "m"})
            self.assertEqual(status, 200, body)
            got = np.array(body["data"][0]["embedding"], dtype=np.float32)
            np.testing.assert_array_equal(got, want[0])
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
