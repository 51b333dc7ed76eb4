"""ravlt.ray.app on Ray Serve (a local instance, 127.0.0.1, a free port):
200 requests from 8 concurrent clients answered as the CLI answers, broken
and oversized bodies refused with 400 / 413 while the others are served."""

import concurrent.futures
import json
import os
import random
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
from ray import serve  # noqa: E402

import ravlt  # noqa: E402
import ravlt.ray  # noqa: E402
from conftest import cli_classify  # noqa: E402

MAX_BODY = 64 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(models):
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(ravlt.ray.app(str(models["digits"]), max_body_bytes=MAX_BODY), route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


def request(url, body=None, method="POST"):
    """(status, JSON answer, seconds); bounded by a timeout."""
    start = time.perf_counter()
    r = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(r, timeout=60) as f:
            status, data = f.status, f.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    return status, json.loads(data), time.perf_counter() - start


def test_routes(service, models, digit_files):
    status, answer, _ = request(service + "/healthz", method="GET")
    assert status == 200 and answer["status"] == "ok"
    body = open(digit_files[0], "rb").read()
    assert len(request(service + "/classify?top_k=2", body)[1]["indices"]) == 2
    assert request(service + "/classify?top_k=0", body)[0] == 400
    assert request(service + "/classify?top_k=x", body)[0] == 400
    assert request(service + "/classify", b"")[0] == 400
    assert request(service + "/nowhere", body)[0] == 404
    assert request(service + "/classify", method="GET")[0] == 405
    status, answer, _ = request(service + "/embed", body)
    rows, _ = ravlt.Classifier(ravlt.Model.load(models["digits"]), threads=1).embed([body])
    assert status == 200 and len(answer["embedding"]) == 256
    np.testing.assert_allclose(answer["embedding"], rows[0], rtol=1e-5, atol=1e-6)
    status, answer, _ = request(service + "/embed", b"junk")
    assert status == 400 and answer["error"].startswith("body: not a JPEG, PNG or BMP")


def test_app_refuses_what_it_cannot_serve(models, tmp_path):
    with pytest.raises(ravlt.Error, match="no such model file"):
        ravlt.ray.app(str(tmp_path / "none.rvlt"))
    with pytest.raises(ravlt.Error, match="is a backbone"):
        ravlt.ray.app(str(models["t_det"]))
    with pytest.raises(ravlt.Error, match="at least 1"):
        ravlt.ray.app(str(models["digits"]), max_body_bytes=0)


def test_200_requests_from_8_clients_with_broken_and_oversized_bodies(service, models,
                                                                       digit_files):
    expected = cli_classify(models["digits"], digit_files)
    rng = random.Random(0)
    good = [rng.choice(digit_files) for _ in range(200)]
    bad = [(b"not an image %d" % i, 400) for i in range(10)]
    bad += [(open(digit_files[i], "rb").read()[:300], 400) for i in range(5)]
    bad += [(b"\xff" * (MAX_BODY + 1 + i), 413) for i in range(5)]
    jobs = [("good", f) for f in good] + [("bad", b) for b in bad]
    rng.shuffle(jobs)

    def send(job):
        kind, what = job
        if kind == "good":
            return job, request(service + "/classify", open(what, "rb").read())
        return job, request(service + "/classify", what[0])

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, jobs, timeout=600))
    wall = time.perf_counter() - started
    latencies = []
    for (kind, what), (status, answer, seconds) in answers:
        if kind == "bad":
            assert status == what[1], (status, answer)
            assert "error" in answer
            continue
        latencies.append(seconds)
        e = expected[os.path.abspath(what)]
        assert status == 200, answer
        assert answer["indices"] == e["indices"] and answer["labels"] == e["labels"]
        np.testing.assert_allclose(answer["probabilities"], e["probabilities"], atol=1e-6)
    # Figures for the record (not limits: the machine's speed drifts).
    classifier = ravlt.Classifier(ravlt.Model.load(models["digits"]), threads=1)
    bodies = [open(f, "rb").read() for f in good[:50]]
    direct = time.perf_counter()
    for b in bodies:
        classifier.classify([b])
    direct = (time.perf_counter() - direct) / len(bodies)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"\nserve: {len(jobs)} requests from 8 clients in {wall:.2f} s "
          f"({len(jobs) / wall:.1f} requests/s); good ones p50 {p50 * 1e3:.1f} ms, "
          f"p99 {p99 * 1e3:.1f} ms; a direct classify call {direct * 1e3:.2f} ms")
    # The replica kept serving after the bad bodies.
    assert request(service + "/classify", open(good[0], "rb").read())[0] == 200
