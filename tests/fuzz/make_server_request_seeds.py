"""Seed corpus for tests/fuzz/server_request_fuzz.cpp: one file per request shape, the first
byte selecting the route (0 /embed, 1 /embed_all, 2 /v1/embeddings, 3 /tokenize, 4+ image input)
and the client batch limit (bits 3..7).

    /usr/bin/python3 tests/fuzz/make_server_request_seeds.py OUT_DIR
"""

import base64
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                    "0000000a49444154789c63600000000200015a3b0fb30000000049454e44ae426082")
seeds = [
    (0 | 8 * 3, {"inputs": ["Hello, world!", "naïve café 東京"], "normalize": True,
                 "truncate": False}),
    (0, {"inputs": "one", "dimensions": 8, "truncation_direction": "right"}),
    (1, {"inputs": ["a"], "normalize": False, "prompt_name": None}),
    (2 | 8 * 2, {"input": ["a", "b"], "model": "m", "encoding_format": "base64", "user": "u"}),
    (2, {"input": [101, 7592, 102], "encoding_format": "float", "dimensions": 4}),
    (2 | 8 * 4, {"input": [[101, 102], [101, 1000, 102]]}),
    (3, {"inputs": "Hello [MASK]", "add_special_tokens": False}),
]
for i, (mode, body) in enumerate(seeds):
    with open(os.path.join(out, f"seed_{i}.bin"), "wb") as f:
        f.write(bytes([mode]) + json.dumps(body, ensure_ascii=i % 2 == 0).encode())
for i, text in enumerate(["data:image/png;base64," + base64.b64encode(png).decode(),
                          base64.b64encode(png).decode().rstrip("="), "http://x/y.png"]):
    with open(os.path.join(out, f"image_{i}.bin"), "wb") as f:
        f.write(bytes([4]) + text.encode())
