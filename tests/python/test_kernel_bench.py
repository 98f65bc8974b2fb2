"""bench/kernels: `tern_kernel_bench`, the GEMM benchmark against the FMA peak and Eigen (moved out of
the tern executable). Env: TERN_BUILD_DIR (the build folder holding tern_kernel_bench)."""
import json
import os
import subprocess
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
BENCH = os.path.join(BUILD, "tern_kernel_bench")

KEYS = ("kernel", "isa", "threads", "M", "N", "K", "iters", "best_ms", "median_ms", "gflops",
        "median_gflops", "peak_gflops", "fraction_of_peak", "eigen_gflops", "eigen_threads",
        "speedup_vs_eigen")


def bench(*argv, isa=None):
    env = dict(os.environ)
    if isa:
        env["TERN_ISA"] = isa
    return subprocess.run([BENCH, *argv], capture_output=True, text=True, env=env)


class KernelBench(unittest.TestCase):
    def test_json_per_shape(self):
        for kernel in ("gemm", "gemm_unpacked"):
            r = bench(kernel, "--shape", "64x48x32", "--shape", "7x9x5", "--iters", "2", "--json",
                      isa="scalar")
            self.assertEqual(r.returncode, 0, r.stderr)
            rows = [json.loads(line) for line in r.stdout.splitlines()]
            self.assertEqual([(j["M"], j["N"], j["K"]) for j in rows], [(64, 48, 32), (7, 9, 5)])
            for j in rows:
                for key in KEYS:
                    self.assertIn(key, j)
                self.assertEqual((j["kernel"], j["isa"], j["threads"], j["iters"]),
                                 (kernel, "scalar", 1, 2))
                self.assertGreater(j["peak_gflops"], 0)
                self.assertAlmostEqual(j["gflops"], 2 * j["M"] * j["N"] * j["K"] / j["best_ms"]
                                       / 1e6, places=3)
                self.assertAlmostEqual(j["fraction_of_peak"], j["gflops"] / j["peak_gflops"],
                                       places=6)
                self.assertLessEqual(j["best_ms"], j["median_ms"])

    def test_text_report(self):
        r = bench("gemm", "--shape", "32x32x32", "--iters", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("FMA peak", "GFLOP/s", "32x32x32", "Eigen"):
            self.assertIn(word, r.stdout)

    def test_conv_against_the_gemm_path(self):
        # A 3x3 stride-1 conv runs by Winograd, a strided one by the GEMM path (speedup ~1 against
        # itself); GFLOP/s counts the direct convolution.
        r = bench("conv", "--conv", "1x12x12x32x32x3x1", "--conv", "2x9x9x16x24x3x2", "--iters",
                  "2", "--json", isa="avx2")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(j["algo"], j["winograd_tile"], j["stride"]) for j in rows],
                         [("winograd", 4, 1), ("gemm", 0, 2)])
        for j, oh in zip(rows, (12, 5)):
            flop = 2 * j["N"] * oh * oh * j["OC"] * j["C"] * j["k"] * j["k"]
            self.assertAlmostEqual(j["gflops"], flop / j["best_ms"] / 1e6, places=3)
            self.assertAlmostEqual(j["speedup_vs_gemm_path"], j["gemm_path_ms"] / j["best_ms"],
                                   places=6)
            self.assertEqual((j["kernel"], j["isa"], j["threads"]), ("conv", "avx2", 1))

    def test_attention_flops_and_fields(self):
        # GFLOP/s counts the two matmuls, 4·B·H·T²·D, against the peak of the same ISA and threads
        r = bench("attention", "--attn", "2x33x3x24", "--attn", "1x7x1x64", "--iters", "2",
                  "--json", isa="avx2")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(j["B"], j["T"], j["H"], j["D"]) for j in rows],
                         [(2, 33, 3, 24), (1, 7, 1, 64)])
        for j in rows:
            flop = 4 * j["B"] * j["H"] * j["T"] ** 2 * j["D"]
            self.assertAlmostEqual(j["gflops"], flop / j["best_ms"] / 1e6, places=3)
            self.assertAlmostEqual(j["fraction_of_peak"], j["gflops"] / j["peak_gflops"], places=6)
            self.assertGreaterEqual(j["median_ms"], j["best_ms"])
            self.assertEqual((j["kernel"], j["isa"], j["threads"], j["iters"]),
                             ("attention", "avx2", 1, 2))

    def test_bad_arguments_are_one_line_errors(self):
        for argv, words in ((("winograd",), "known kernels"),
                            (("conv", "--conv", "1x4x4x8x8x3"), "--conv"),
                            (("attention", "--attn", "1x4x0x8"), "--attn"),
                            (("gemm", "--shape", "0x4x4"), "--shape"),
                            (("gemm", "--shape", "4x4"), "--shape"),
                            (("gemm", "--threads", "x"), "--threads"),
                            (("gemm", "--iters"), "needs a value"),
                            (("gemm", "--frobnicate"), "unknown option")):
            r = bench(*argv)
            self.assertEqual(r.returncode, 1, (argv, r.stdout, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(words, r.stderr)
            self.assertTrue(r.stderr.startswith("tern_kernel_bench: error:"), r.stderr)


if __name__ == "__main__":
    unittest.main()
