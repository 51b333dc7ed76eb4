"""Fixtures of the Python module's tests: the ravlt CLI (the reference the
module must match), the generated test checkpoints, and models converted
from them once per test run.

Environment (CTest sets them; the defaults are the repository's build/):
RAVLT_CLI (the `ravlt` binary), RAVLT_TESTDATA (generated checkpoints).
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ravlt

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("RAVLT_CLI", REPO / "build" / "ravlt"))
TESTDATA = Path(os.environ.get("RAVLT_TESTDATA", REPO / "build" / "testdata"))
DIGITS = REPO / "demo" / "digits"

# The sanitizer run imports the instrumented build's package: make sure it is
# the one under test (PYTHONPATH), not the virtual environment's.
if os.environ.get("RAVLT_EXPECT_MODULE"):
    assert ravlt.__file__.startswith(os.environ["RAVLT_EXPECT_MODULE"]), ravlt.__file__


def run_cli(*args, check=True):
    """Runs the ravlt CLI; returns the completed process (text)."""
    # Not the sanitizer runtime the sanitizer run preloads into Python: the
    # CLI of that build links its own.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    p = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=600,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"ravlt {' '.join(map(str, args))} failed:\n{p.stderr}")
    return p


def cli_classify(model, inputs, top_k=5):
    """`ravlt classify --json` results keyed by absolute path."""
    out = run_cli("classify", "-m", model, *inputs, "--json", "--top-k", top_k, "--threads", 2,
                  check=False).stdout
    return {os.path.abspath(r["path"]): r for r in json.loads(out)["results"]}


def brgemm_reads_stored_weights():
    """Whether oneDNN's float32 matmul can read a weight where the model file
    stores it (its brgemm kernels: AVX-512 up, unless DNNL_MAX_CPU_ISA masks
    them); elsewhere pack_weights=False packs every weight all the same."""
    isa = os.environ.get("DNNL_MAX_CPU_ISA", "ALL").upper()
    if isa in ("SSE41", "AVX") or isa.startswith("AVX2"):
        return False
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The demo digits classifier, RAVLT-T (random weights written by the
    reference's generator) and the T detection backbone, converted once."""
    if not CLI.exists():
        pytest.fail(f"{CLI}: no ravlt CLI (build it, or set RAVLT_CLI)")
    d = tmp_path_factory.mktemp("models")
    out = {}
    labels = (REPO / "demo" / "digit_labels.txt").read_text().splitlines()
    out["digits"] = d / "digits.rvlt"
    ravlt.convert(REPO / "demo" / "ravlt_digits.pth", out["digits"], resize=64, crop=64,
                  labels=labels)
    for name, src in (("t", "T_bare.pth"), ("t_det", "T_mmdet.pth")):
        if not (TESTDATA / src).exists():
            pytest.fail(f"{TESTDATA / src}: missing (generate the test checkpoints, or set "
                        "RAVLT_TESTDATA)")
        out[name] = d / f"{name}.rvlt"
        ravlt.convert(TESTDATA / src, out[name])
    return out


@pytest.fixture(scope="session")
def digit_files():
    files = sorted(str(p) for p in DIGITS.glob("*.png"))
    assert len(files) == 360
    return files
