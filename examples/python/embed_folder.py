"""Embeds every JPEG and PNG under a folder into one .npy, with the file list beside it.

    python3 examples/python/embed_folder.py MODEL.tern FOLDER OUT.npy
"""
import sys
from pathlib import Path

import numpy as np

import tern


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, folder, out = sys.argv[1:]
    images = sorted((p for p in Path(folder).rglob("*")
                     if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png")), key=str)
    if not images:
        print(f"error: {folder}: no .jpg, .jpeg or .png files", file=sys.stderr)
        return 1
    try:
        model = tern.load(model_path)
        vectors = model.embed_images(images, normalize=True, show_progress_bar=None)
    except tern.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    np.save(out, vectors)  # float32 [N, D], in the order of the list
    Path(out).with_suffix(".txt").write_text("".join(f"{p}\n" for p in images))
    print(f"{len(images)} images -> {out} {list(vectors.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
