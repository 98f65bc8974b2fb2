"""Tern's image pipeline against PIL + torchvision.

Images of odd sizes and modes are generated with PIL at test time. For each one and each profile,
Tern's uint8 crop (tests/tools/image_dump.cpp) is compared with
    T.CenterCrop(224)(T.Resize(size, interpolation)(Image.open(path).convert("RGB")))
and Tern's normalised tensor with T.Normalize(mean, std)(T.ToTensor()(that crop)).

PNG: decoding and the crop must match exactly (the contract allows one 8-bit level; Tern is
bit-exact), the tensor within 1e-6. JPEG: stb_image and libjpeg decode slightly differently, so
the decoded pixels are compared loosely, and the resampling is checked exactly by feeding PIL's
own decoded pixels to Tern.

Run by CTest with TERN_BUILD_DIR set; by hand:
    TERN_BUILD_DIR=build /usr/bin/python3 tests/python/test_preprocess.py
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

BUILD_DIR = os.environ.get("TERN_BUILD_DIR", "build")
DUMP = os.path.join(BUILD_DIR, "tests", "tern_image_dump")

PROFILES = {
    "torchvision-v1": (256, T.InterpolationMode.BILINEAR, 224),
    "torchvision-v2": (232, T.InterpolationMode.BILINEAR, 224),
    "timm": (235, T.InterpolationMode.BICUBIC, 224),
}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def run_dump(*args):
    proc = subprocess.run([DUMP, *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stderr.strip()


def reference_crop(rgb_image, resize, interpolation, crop):
    resized = T.Resize(resize, interpolation=interpolation)(rgb_image)
    return T.CenterCrop(crop)(resized)


def reference_tensor(crop_image):
    return T.Normalize(MEAN, STD)(T.ToTensor()(crop_image)).numpy()


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_bytes(width, height, color_type, bit_depth, rows, extra_chunks=b"", pixels=None):
    """A PNG written by hand (PIL cannot write 16-bit RGB or interlaced PNGs). With `pixels`
    (an [H, W, C] big-endian-ready array) instead of `rows`, it is written Adam7-interlaced."""

    def chunk(tag, data):
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    interlace = 1 if pixels is not None else 0
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    if pixels is not None:
        rows = []
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                rows += [row.tobytes() for row in sub]
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra_chunks +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def textured(h, w, seed):
    """Smooth gradients plus noise: resampling errors show on both."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)),
                     ((x + y) % 37) * 7.0], axis=-1)
    noise = rng.integers(-40, 41, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


class Preprocess(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DUMP):
            raise RuntimeError(f"{DUMP} not found: build the tern_image_dump target")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def pngs(self):
        """(name, path) for PNGs of many modes and shapes."""
        out = []

        def save(name, image, **kw):
            p = self.path(name + ".png")
            image.save(p, **kw)
            out.append((name, p))

        for i, (h, w) in enumerate([(375, 500), (517, 333), (1, 1), (500, 3), (3, 500), (2, 2),
                                    (1, 7), (7, 1), (100, 150), (224, 224), (256, 300),
                                    (232, 232), (235, 241), (1200, 901)]):
            save(f"rgb_{h}x{w}", Image.fromarray(textured(h, w, i)))
        a = textured(97, 131, 50)
        save("gray_L", Image.fromarray(a[..., 0]))
        save("gray_1bit", Image.fromarray(a[..., 0] > 128))
        la = np.stack([a[..., 0], a[..., 1]], axis=-1)
        save("gray_alpha_LA", Image.fromarray(la, "LA"))
        rgba = np.concatenate([a, a[..., :1]], axis=-1)
        save("rgba", Image.fromarray(rgba, "RGBA"))
        pal = Image.fromarray(a).quantize(colors=200)
        save("palette", pal)
        save("palette_trns", pal, transparency=3)
        save("palette_4bit", Image.fromarray(a).quantize(colors=16), bits=4)
        save("gray_trns", Image.fromarray(a[..., 0]), transparency=17)
        rng = np.random.default_rng(7)
        g16 = rng.integers(0, 65536, (61, 83), dtype=np.uint16)
        g16[:, :40] = rng.integers(0, 300, (61, 40), dtype=np.uint16)  # values PIL does not clip
        save("gray_16bit", Image.fromarray(g16))
        for name, ct, ch in [("rgb_16bit", 2, 3), ("rgba_16bit", 6, 4), ("gray_alpha_16bit", 4, 2)]:
            v = rng.integers(0, 65536, (45, 67, ch), dtype=np.uint16)
            p = self.path(name + ".png")
            with open(p, "wb") as f:
                f.write(png_bytes(67, 45, ct, 16, [row.astype(">u2").tobytes() for row in v]))
            out.append((name, p))
        for name, bits, dtype in [("interlaced", 8, np.uint8), ("interlaced_16bit", 16, ">u2")]:
            v = rng.integers(0, 2 ** bits, (29, 19, 3)).astype(dtype)
            p = self.path(name + ".png")
            with open(p, "wb") as f:
                f.write(png_bytes(19, 29, 2, bits, None, pixels=v))
            out.append((name, p))
        return out

    def test_png_decode_matches_pil_convert_rgb(self):
        for name, p in self.pngs():
            with self.subTest(image=name):
                rc, err = run_dump("decode", p, self.path("dec.npy"))
                self.assertEqual(rc, 0, err)
                ours = np.load(self.path("dec.npy"))
                ref = np.array(Image.open(p).convert("RGB"))
                self.assertEqual(ours.shape, ref.shape)
                diff = np.argwhere(ours != ref)
                self.assertEqual(len(diff), 0, f"{name}: first differing pixel {diff[:1]}")

    def test_png_crop_and_tensor_match_torchvision(self):
        for name, p in self.pngs():
            rgb = Image.open(p).convert("RGB")
            for profile, (size, interp, crop) in PROFILES.items():
                with self.subTest(image=name, profile=profile):
                    self.check_preprocess(p, profile, reference_crop(rgb, size, interp, crop))

    def test_custom_config_with_padding(self):
        # resize below the crop: torchvision pads with zeros before cropping.
        p = self.path("pad_src.png")
        Image.fromarray(textured(90, 61, 3)).save(p)
        rgb = Image.open(p).convert("RGB")
        for size, interp, crop, filt in [(200, T.InterpolationMode.BILINEAR, 224, "bilinear"),
                                         (101, T.InterpolationMode.BICUBIC, 224, "bicubic"),
                                         (300, T.InterpolationMode.BICUBIC, 299, "bicubic")]:
            cfg = ('{"profile": "custom", "resize": %d, "interpolation": "%s", "crop": %d, '
                   '"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}' % (size, filt, crop))
            with self.subTest(config=cfg):
                self.check_preprocess(p, cfg, reference_crop(rgb, size, interp, crop))

    def check_preprocess(self, path, profile, ref_crop):
        rc, err = run_dump("preprocess", path, profile, self.path("crop.npy"),
                           self.path("tensor.npy"))
        self.assertEqual(rc, 0, err)
        crop = np.load(self.path("crop.npy"))
        ref = np.array(ref_crop)
        self.assertEqual(crop.shape, ref.shape)
        d = np.abs(crop.astype(int) - ref.astype(int))
        self.assertLessEqual(d.max(), 1, f"crop differs by {d.max()} levels")
        self.assertEqual(int((d > 0).sum()), 0, "crop is not bit-exact with PIL")
        tensor = np.load(self.path("tensor.npy"))
        self.assertEqual(tensor.dtype, np.float32)
        ref_t = reference_tensor(ref_crop)
        self.assertEqual(tensor.shape, ref_t.shape)
        self.assertLessEqual(float(np.abs(tensor - ref_t).max()), 1e-6)

    def jpegs(self):
        out = []
        a = textured(301, 403, 11)
        for name, image, kw in [
            ("baseline", Image.fromarray(a), dict(quality=90)),
            ("baseline_444", Image.fromarray(a), dict(quality=95, subsampling=0)),
            ("progressive", Image.fromarray(a), dict(quality=85, progressive=True)),
            ("grayscale", Image.fromarray(a[..., 1]), dict(quality=90)),
            # 5 wide: with 4:2:0, chroma 3 wide. At chroma widths <= 2 libjpeg switches from
            # triangle ("fancy") to box chroma upsampling and stb does not: a known difference.
            ("tall", Image.fromarray(textured(500, 5, 12)), dict(quality=90)),
            ("tall_444", Image.fromarray(textured(500, 3, 12)), dict(quality=90, subsampling=0)),
            ("tiny", Image.fromarray(textured(1, 1, 13)), dict(quality=90)),
        ]:
            p = self.path(name + ".jpg")
            image.save(p, **kw)
            out.append((name, p))
        return out

    def test_jpeg_decode_close_to_pil(self):
        for name, p in self.jpegs():
            with self.subTest(image=name):
                rc, err = run_dump("decode", p, self.path("dec.npy"))
                self.assertEqual(rc, 0, err)
                ours = np.load(self.path("dec.npy")).astype(int)
                ref = np.array(Image.open(p).convert("RGB")).astype(int)
                self.assertEqual(ours.shape, ref.shape)
                d = np.abs(ours - ref)
                # Different IDCT/upsampling: a few levels at most, about one on average.
                self.assertLessEqual(d.mean(), 1.5, f"{name}: mean |diff| {d.mean():.3f}")
                self.assertLessEqual(d.max(), 24, f"{name}: max |diff| {d.max()}")

    def test_jpeg_resampling_exact_on_pil_pixels(self):
        for name, p in self.jpegs():
            rgb = Image.open(p).convert("RGB")
            np.save(self.path("pixels.npy"), np.array(rgb))
            for profile, (size, interp, crop) in PROFILES.items():
                with self.subTest(image=name, profile=profile):
                    self.check_preprocess(self.path("pixels.npy"), profile,
                                          reference_crop(rgb, size, interp, crop))

    def test_resize_like_pil_random_shapes(self):
        rng = np.random.default_rng(2024)
        for trial in range(40):
            h, w = (int(v) for v in rng.integers(1, 260, 2))
            oh, ow = (int(v) for v in rng.integers(1, 300, 2))
            a = textured(h, w, 100 + trial)
            np.save(self.path("in.npy"), a)
            for filt, pil in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
                with self.subTest(src=(h, w), dst=(oh, ow), filter=filt):
                    rc, err = run_dump("resize", self.path("in.npy"), ow, oh, filt,
                                       self.path("out.npy"))
                    self.assertEqual(rc, 0, err)
                    ours = np.load(self.path("out.npy"))
                    ref = np.array(Image.fromarray(a).resize((ow, oh), pil))
                    self.assertTrue(np.array_equal(ours, ref),
                                    f"first diff at {np.argwhere(ours != ref)[:1]}")

    def test_unsupported_formats_are_named(self):
        a = textured(20, 30, 5)
        cases = [("GIF", "GIF"), ("WEBP", "WebP"), ("TIFF", "TIFF"), ("BMP", "BMP")]
        for fmt, label in cases:
            with self.subTest(format=fmt):
                p = self.path("x." + fmt.lower())
                Image.fromarray(a).save(p, format=fmt)
                rc, err = run_dump("decode", p, self.path("dec.npy"))
                self.assertEqual(rc, 1)
                self.assertIn(f"unsupported image format: {label}", err)
                self.assertIn(p, err)
        p = self.path("vector.jpg")
        with open(p, "w") as f:
            f.write('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n')
        rc, err = run_dump("decode", p, self.path("dec.npy"))
        self.assertEqual(rc, 1)
        self.assertIn("unsupported image format: SVG", err)

    def test_exif_orientation_is_ignored(self):
        # Like PIL without ImageOps.exif_transpose: pixels as stored, not rotated.
        p = self.path("rotated.png")
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 CW to display"
        a = textured(40, 70, 8)
        Image.fromarray(a).save(p, exif=exif.tobytes())
        pj = self.path("rotated.jpg")
        Image.fromarray(a).save(pj, exif=exif.tobytes(), quality=95)
        self.assertEqual(Image.open(pj).getexif().get(0x0112), 6)
        for path in (p, pj):
            rc, err = run_dump("decode", path, self.path("dec.npy"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(np.load(self.path("dec.npy")).shape, (40, 70, 3))

    def test_cmyk_jpeg_is_unsupported(self):
        p = self.path("cmyk.jpg")
        Image.fromarray(textured(16, 16, 9)).convert("CMYK").save(p)
        rc, err = run_dump("decode", p, self.path("dec.npy"))
        self.assertEqual(rc, 1)
        self.assertIn("unsupported image format: CMYK", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
