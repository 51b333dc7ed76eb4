"""Shared setup of the Python tests: their command line (CTest passes the
paths of the built tool and of the test data), and a unittest runner whose
exit status CTest reads (77: skipped)."""

import argparse
import os
import subprocess
import sys
import unittest

ARGS = None
SKIP = 77


def parse():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--ravlt", help="the built ravlt tool")
    ap.add_argument("--data", help="folder of generated test checkpoints")
    ap.add_argument("--schema-py", help="flatc --python output for rvlt.fbs")
    ap.add_argument("--golden", help="shared/data/golden")
    ARGS, rest = ap.parse_known_args()
    if ARGS.schema_py:
        os.environ["RAVLT_SCHEMA_PY"] = ARGS.schema_py
        sys.path.insert(0, ARGS.schema_py)
    return rest


def main():
    rest = parse()
    result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun == len(result.skipped):
        sys.exit(SKIP)
    sys.exit(0)


def data(name):
    return os.path.join(ARGS.data, name)


def ravlt(*args, check=True, env=None):
    """Runs the tool (with `env` added to the environment); returns the
    CompletedProcess (text)."""
    p = subprocess.run([ARGS.ravlt, *args], capture_output=True, text=True, timeout=600,
                       env=None if env is None else {**os.environ, **env})
    if check and p.returncode != 0:
        raise AssertionError(f"ravlt {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def rel_l2(a, b):
    import torch
    return float(torch.linalg.norm((a - b).double()) / torch.linalg.norm(b.double()))


def reference_pair(cls, cfg, state):
    """The reference model `cls(cfg)` in float32 and in float64, with
    `state` loaded strictly."""
    ref = cls(cfg).eval()
    ref.load_state_dict(state, strict=True)
    ref64 = cls(cfg).eval().double()
    ref64.load_state_dict(state, strict=True)
    return ref, ref64
