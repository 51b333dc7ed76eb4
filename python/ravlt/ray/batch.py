"""Classify a folder (or glob) of images on Ray and write the rows to Parquet.

    python -m ravlt.ray.batch --model M.rvlt --input DIR_OR_GLOB --output results.parquet
        [--address ADDR] [--concurrency N] [--threads-per-actor N] [--batch-size N] [--top-k N]

Without --address, a local Ray instance is started (with enough logical CPUs
for the actors and Ray's read tasks); with one, the job runs on that cluster
(``auto`` finds a running one). The output is Ray's Parquet dataset: a
folder of files that pandas.read_parquet and pyarrow read as one table with
the columns path, indices, labels, probabilities, error.
"""

from __future__ import annotations

import argparse
import sys
import time



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ravlt.ray.batch", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="the .rvlt classifier (a path every node can read)")
    p.add_argument("--input", required=True, nargs="+",
                   help="image files, folders (searched recursively) or globs")
    p.add_argument("--output", required=True, help="where to write the Parquet dataset (a folder)")
    p.add_argument("--address", default=None,
                   help="a Ray cluster's address ('auto': the running one); default: a local instance")
    p.add_argument("--concurrency", type=int, default=2, help="actors (default 2)")
    p.add_argument("--threads-per-actor", type=int, default=1,
                   help="network threads per actor, and CPUs each reserves (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--cache-dir", default=None,
                   help="a directory on each node for the packed weights: actors start sooner")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import pyarrow.parquet as pq
    import ravlt.ray
    from ravlt.ray._cluster import connect
    from ravlt.ray._model_file import checked_classifier

    try:
        checked_classifier(args.model)  # before Ray starts: a bad path fails at once
    except ravlt.Error as e:
        print(f"ravlt.ray.batch: error: {e}", file=sys.stderr)
        return 1
    # Logical CPUs for the actors plus two for Ray's read and write tasks.
    connect(args.address, args.concurrency * args.threads_per_actor + 2)
    start = time.perf_counter()
    try:
        ds = ravlt.ray.classify(args.input, args.model, batch_size=args.batch_size,
                                concurrency=args.concurrency,
                                threads_per_actor=args.threads_per_actor, top_k=args.top_k,
                                cache_dir=args.cache_dir)
        ds.write_parquet(args.output)
    except ravlt.Error as e:
        print(f"ravlt.ray.batch: error: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    errors = pq.read_table(args.output, columns=["error"]).column("error").to_pylist()
    failed = sum(e is not None for e in errors)
    print(f"classified {len(errors) - failed} images ({failed} failed) in {seconds:.1f} s "
          f"({len(errors) / seconds:.1f} images/s) into {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
