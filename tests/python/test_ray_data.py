"""ravlt.ray.classify on a local Ray instance (started once for the module):
the held-out digits through 2 actors equal the CLI's results; an unreadable
file is an error row; the batch command writes the same rows to Parquet."""

import os
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
import ravlt  # noqa: E402
import ravlt.ray  # noqa: E402
from conftest import DIGITS, cli_classify  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    # 4 logical CPUs on 2 cores: the actors' CPUs plus room for read tasks.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    d = tmp_path_factory.mktemp("broken")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n then nothing")
    return str(d / "broken.png")


@pytest.fixture(scope="module")
def expected(models, digit_files, broken):
    return cli_classify(models["digits"], [str(DIGITS), broken])


def check_rows(rows, expected):
    by_path = {os.path.abspath(r["path"]): r for r in rows}
    assert set(by_path) == set(expected)
    for path, e in expected.items():
        r = by_path[path]
        if "error" in e:
            assert r["error"] and r["indices"] == [] and "broken.png" in r["error"], r
            continue
        assert r["error"] is None, r
        assert list(r["indices"]) == e["indices"], path
        assert list(r["labels"]) == e["labels"], path
        np.testing.assert_allclose(r["probabilities"], e["probabilities"], atol=1e-6)


def test_digits_through_two_actors_equal_the_cli(cluster, models, broken, expected):
    ds = ravlt.ray.classify([str(DIGITS), broken], str(models["digits"]), batch_size=32,
                            concurrency=2, threads_per_actor=1)
    rows = ds.take_all()
    assert len(rows) == 361
    check_rows(rows, expected)
    assert sum(r["error"] is not None for r in rows) == 1


def test_a_dataset_source(cluster, models, digit_files, expected):
    ds = ray.data.read_binary_files(digit_files[:50], include_paths=True)
    rows = ravlt.ray.classify(ds, str(models["digits"]), concurrency=1,
                              threads_per_actor=1).take_all()
    assert len(rows) == 50
    check_rows(rows, {k: v for k, v in expected.items() if k in set(digit_files[:50])})


def test_bad_sources(cluster, models, tmp_path):
    with pytest.raises(ravlt.Error, match="no such model file"):
        ravlt.ray.classify(str(DIGITS), str(tmp_path / "none.rvlt"))
    with pytest.raises(ravlt.Error, match="is a backbone"):
        ravlt.ray.classify(str(DIGITS), str(models["t_det"]))
    (tmp_path / "junk.rvlt").write_bytes(b"junk")
    with pytest.raises(ravlt.Error, match="junk.rvlt"):
        ravlt.ray.classify(str(DIGITS), str(tmp_path / "junk.rvlt"))
    with pytest.raises(ravlt.Error, match="no images found"):
        ravlt.ray.classify(str(tmp_path), str(models["digits"]))
    with pytest.raises(ravlt.Error, match="has no bytes column"):
        ravlt.ray.classify(ray.data.from_items([{"path": "a"}]), str(models["digits"]))


def test_batch_command_writes_parquet(cluster, models, broken, expected, tmp_path):
    import pyarrow.parquet as pq
    out = tmp_path / "results.parquet"
    p = subprocess.run([sys.executable, "-m", "ravlt.ray.batch", "--model", str(models["digits"]),
                        "--input", str(DIGITS), broken, "--output", str(out), "--address", cluster,
                        "--concurrency", "2", "--cache-dir", str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stderr  # one image failed
    assert "classified 360 images (1 failed)" in p.stdout, p.stdout + p.stderr
    # The actors kept the packed weights there, one file for the model.
    assert [f.suffix for f in (tmp_path / "cache").iterdir()] == [".rvltpack"]
    check_rows(pq.read_table(out).to_pylist(), expected)


def test_serve_command(cluster, models, digit_files):
    """python -m ravlt.ray.serve on this module's Ray instance (which runs no
    other Serve application): it answers, and stops on SIGTERM."""
    import json
    import signal
    import socket
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "ravlt.ray.serve", "--model", str(models["digits"]),
                          "--port", str(port), "--address", cluster],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert p.poll() is None, p.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as f:
                    assert json.loads(f.read())["status"] == "ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not come up in 180 s"
                time.sleep(0.5)
        body = open(digit_files[0], "rb").read()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/classify?top_k=1", data=body)
        with urllib.request.urlopen(request, timeout=60) as f:
            assert len(json.loads(f.read())["indices"]) == 1
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    assert p.returncode == 0, p.stderr.read()


def test_commands_help_and_bad_arguments(models):
    for module in ("ravlt.ray.batch", "ravlt.ray.serve"):
        p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0 and "--model" in p.stdout
    for module in ("ravlt.ray.batch", "ravlt.ray.serve"):
        p = subprocess.run([sys.executable, "-m", module, "--model", "/none.rvlt", "--input", "x",
                            "--output", "y"] if module.endswith("batch") else
                           [sys.executable, "-m", module, "--model", "/none.rvlt"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 1 and "/none.rvlt: no such model file" in p.stderr, p.stderr
