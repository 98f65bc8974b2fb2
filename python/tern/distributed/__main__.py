"""python3 -m tern.distributed MODEL.tern INPUT... -o OUT_DIR [options]: see --help."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Embeds images or texts with a Tern model on a Dask cluster: one task per partition of inputs,
one shard per partition in OUT_DIR (part-NNNNN.npy + part-NNNNN.json), then manifest.json.
The shards concatenated equal `tern embed` on the same inputs and options, bit for bit.
Without --scheduler a LocalCluster runs here (one single-threaded worker process per core).
Model, inputs and OUT_DIR must be on paths every worker can read (OUT_DIR: write)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"tern.distributed: error: {message} (see --help)\n")
        sys.exit(2)


def main(argv=None) -> int:
    ap = _Parser(prog="python3 -m tern.distributed", description=HELP,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", metavar="MODEL.tern")
    ap.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="image files or directories (.jpg/.jpeg/.png under it, sorted by path)")
    ap.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    ap.add_argument("--text-file", action="append", default=[], metavar="FILE",
                    help="one text per line, UTF-8 (repeatable)")
    ap.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler")
    ap.add_argument("--scheduler-file", metavar="FILE",
                    help="the file `dask scheduler --scheduler-file` wrote")
    ap.add_argument("--partition-size", type=int, default=256, metavar="N",
                    help="inputs per task and shard (default 256)")
    ap.add_argument("--batch", type=int, default=8, metavar="N",
                    help="inputs per forward pass (default 8)")
    ap.add_argument("--pooling", metavar="P", help="none | cls | mean (default: the model's)")
    ap.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    ap.add_argument("--max-length", type=int, metavar="N", help="texts: at most N tokens")
    ap.add_argument("--truncate", action="store_true", help="texts: cut longer texts")
    ap.add_argument("--keep-going", action="store_true",
                    help="list bad inputs in the manifest instead of failing; exit 1 if any")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the shards in OUT_DIR that match this job")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args(argv)
    if a.scheduler and a.scheduler_file:
        ap.error("give --scheduler or --scheduler-file, not both")
    if a.text_file and a.inputs:
        ap.error("give images or --text-file, not both")

    import tern
    import tern.distributed as td
    try:
        manifest = td.embed(a.model, a.text_file or a.inputs, a.output, client=a.scheduler,
                            scheduler_file=a.scheduler_file, partition_size=a.partition_size,
                            batch_size=a.batch, pooling=a.pooling, normalize=a.normalize,
                            texts=bool(a.text_file), max_length=a.max_length,
                            truncate=a.truncate, keep_going=a.keep_going, resume=a.resume,
                            progress=False if a.quiet else None)
    except tern.Error as e:
        sys.stderr.write(f"tern.distributed: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("tern.distributed: interrupted (rerun with --resume to continue)\n")
        return 130
    for f in manifest["failed"]:
        sys.stderr.write(f"tern.distributed: failed: {f['error']}\n")
    n, bad = manifest["count"], len(manifest["failed"])
    if bad:
        sys.stderr.write(f"tern.distributed: {bad} of {n + bad} inputs failed\n")
    sys.stderr.write(f"tern.distributed: wrote {n} embeddings in {len(manifest['parts'])} "
                     f"shards to {a.output} ({manifest['reused_parts']} reused)\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
