"""Serve a classifier over HTTP with Ray Serve.

    python -m ravlt.ray.serve --model M.rvlt [--host 127.0.0.1] [--port 8000] [--replicas N]
        [--threads-per-replica N] [--max-body-bytes N] [--address ADDR]

POST /classify (the body: an image file; ?top_k=N), POST /embed, GET /healthz.
Runs until interrupted (Ctrl-C). Without --address, a local Ray instance.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ravlt.ray.serve", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="the .rvlt classifier")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--replicas", type=int, default=1, help="replicas (default 1)")
    p.add_argument("--threads-per-replica", type=int, default=1,
                   help="network threads per replica, and CPUs each reserves (default 1)")
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="largest request body accepted (default 20 MiB); larger is HTTP 413")
    p.add_argument("--address", default=None,
                   help="a Ray cluster's address ('auto': the running one); default: a local instance")
    p.add_argument("--cache-dir", default=None,
                   help="a directory on each node for the packed weights: replicas start sooner")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ray import serve

    import ravlt.ray
    from ravlt.ray._cluster import connect
    from ravlt.ray.serving import DEFAULT_MAX_BODY_BYTES

    try:
        application = ravlt.ray.app(
            args.model, num_replicas=args.replicas, threads_per_replica=args.threads_per_replica,
            max_body_bytes=args.max_body_bytes or DEFAULT_MAX_BODY_BYTES, cache_dir=args.cache_dir)
    except ravlt.Error as e:
        print(f"ravlt.ray.serve: error: {e}", file=sys.stderr)
        return 1
    connect(args.address, args.replicas * args.threads_per_replica + 1)
    # After ray.init, which installs a SIGTERM handler that exits at once:
    # SIGTERM stops the service cleanly instead, whenever it comes.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(application, name="ravlt", route_prefix="/")
    print(f"serving {args.model} on http://{args.host}:{args.port} "
          "(POST /classify, POST /embed, GET /healthz); Ctrl-C stops", flush=True)
    try:
        while not stop.wait(0.5):  # (a timed wait: signal handlers run between waits)
            pass
    except KeyboardInterrupt:
        pass
    if args.address:
        serve.delete("ravlt")  # a cluster's Serve may run other applications
    else:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
