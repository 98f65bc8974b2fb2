"""Semantic search over a few sentences with a text model and numpy.

    python3 examples/python/search.py MODEL.tern ["QUERY"]
"""
import sys

import numpy as np

import tern

DOCUMENTS = [
    "The motorcycle was parked outside the cafe.",
    "A recipe for bread needs flour, water, salt and yeast.",
    "The stock market fell sharply on Monday.",
    "Cats sleep for most of the day.",
    "The new electric motorbike has a range of 200 km.",
]


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    query = sys.argv[2] if len(sys.argv) == 3 else "Which vehicle has two wheels?"
    model = tern.load(sys.argv[1])
    docs = model.encode(DOCUMENTS, normalize_embeddings=True)  # [5, D]
    q = model.encode(query, normalize_embeddings=True)          # [D]
    scores = docs @ q                                           # cosine: the vectors are unit
    print(f"query: {query}")
    for i in np.argsort(-scores)[:3]:
        print(f"{scores[i]:.3f}  {DOCUMENTS[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
