"""The module against the CLI: conversion, model description, Session runs
bit for bit, Classifier results image for image, embeddings."""

import json
import os
import pathlib

import numpy as np
import pytest

import ravlt
from conftest import (REPO, TESTDATA, brgemm_reads_stored_weights, cli_classify, random_input,
                      run_cli)


def test_version_matches_the_library():
    assert ravlt.__version__ == run_cli("--version").stdout.split()[-1]


def test_convert_summary(models, tmp_path):
    s = ravlt.convert(REPO / "demo" / "ravlt_digits.pth", tmp_path / "d.rvlt", resize=64,
                      crop=64, dtype="bf16")
    for key in ("variant", "config", "parameters", "file_bytes", "left_out", "summary"):
        assert key in s
    assert s["variant"] == "custom" and s["kind"] == "classifier"
    assert s["config"]["dims"] == [32, 64, 128, 256]
    assert s["config"]["attention"] == ["rala", "rala", "softmax", "softmax"]
    assert s["weight_dtype"] == "bfloat16"
    assert s["file_bytes"] == os.path.getsize(tmp_path / "d.rvlt")
    assert s["left_out"] == {}


def test_convert_detector_reports_what_it_left_out(models, tmp_path):
    s = ravlt.convert(TESTDATA / "T_mmdet.pth", tmp_path / "b.rvlt", out_indices=[1, 3])
    assert s["kind"] == "backbone"
    assert s["outputs"] == ["stage2", "stage4"]
    assert s["left_out"] and all(n > 0 for n in s["left_out"].values())
    assert "not part of the backbone" in s["summary"]


def test_model_properties_and_info_equal_inspect(models):
    m = ravlt.Model.load(models["digits"])
    assert m.kind == "classifier"
    assert m.outputs == ["logits", "embedding"]
    assert m.labels == [str(i) for i in range(10)]
    assert m.num_classes == 10
    assert m.preprocessing["resize"] == 64 and m.preprocessing["crop"] == (64, 64)
    assert m.config["projection"] == 256
    assert m.info() == json.loads(run_cli("inspect", models["digits"], "--json").stdout)
    sized = json.loads(run_cli("inspect", models["t_det"], "--json", "--size", "97x75").stdout)
    assert ravlt.Model.load(models["t_det"]).info(size=(97, 75)) == sized
    b = ravlt.Model.load(models["t_det"], verify_checksum=False)
    assert b.kind == "backbone" and b.outputs == ["stage1", "stage2", "stage3", "stage4"]
    assert b.labels == [] and b.preprocessing["crop"] is None


def test_packed_weight_cache_written_then_read(models, tmp_path):
    x = random_input((1, 3, 64, 64), seed=3)
    assert ravlt.Model.load(models["digits"]).weight_cache == {
        "path": "", "status": "", "bytes_used": 0}
    results = []
    for expected in ("written (", "read"):
        m = ravlt.Model.load(models["digits"], cache_dir=tmp_path / "cache")
        y = ravlt.Session(m, threads=2).run(x)
        assert m.weight_cache["status"].startswith(expected)
        assert pathlib.Path(m.weight_cache["path"]).parent == tmp_path / "cache"
        results.append((y, m.weight_cache["bytes_used"]))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == 0 and results[1][1] > 0


@pytest.mark.parametrize("name,shape", [("digits", (3, 3, 64, 64)), ("t", (2, 3, 97, 75)),
                                        ("t", (1, 3, 224, 224))])
def test_session_run_equals_cli_bit_for_bit(models, tmp_path, name, shape):
    x = random_input(shape, seed=sum(shape))
    np.save(tmp_path / "x.npy", x)
    # Both packed before the first run (a job this small reads the weights in
    # place by default; a Session reads them so in its first run).
    run_cli("run", "-m", models[name], "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
            "--threads", 2, "--packing")
    expected = dict(np.load(tmp_path / "y.npz"))
    session = ravlt.Session(ravlt.Model.load(models[name]), threads=2, defer_packing=False)
    y = session.run(x)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert np.array_equal(y, expected["logits"])
    outputs = session.run_all(x)
    assert list(outputs) == ["logits", "embedding"]
    for k, v in outputs.items():
        assert np.array_equal(v, expected[k]), k
    assert list(session.run_all(x, select=["embedding"])) == ["embedding"]


def test_backbone_run_all_equals_cli(models, tmp_path):
    x = random_input((2, 3, 65, 99), seed=3)
    np.save(tmp_path / "x.npy", x)
    run_cli("run", "-m", models["t_det"], "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
            "--threads", 2, "--packing")
    expected = dict(np.load(tmp_path / "y.npz"))
    session = ravlt.Session(ravlt.Model.load(models["t_det"]), threads=2, defer_packing=False)
    got = session.run_all(x)
    assert list(got) == ["stage1", "stage2", "stage3", "stage4"]
    for k in got:
        assert got[k].shape == expected[k].shape and np.array_equal(got[k], expected[k]), k
    assert session.output_shapes([2, 3, 65, 99]) == {k: v.shape for k, v in got.items()}
    assert np.array_equal(session.run(x), expected["stage1"])


def test_unpacked_weights_equal_the_cli(models, digit_files, tmp_path):
    """pack_weights=False: the same logits as `ravlt run --no-packing`, bit for
    bit, and near the packed run's; the Classifier takes it too."""
    x = random_input((2, 3, 61, 45), seed=7)
    np.save(tmp_path / "x.npy", x)
    run_cli("run", "-m", models["t"], "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
            "--threads", 2, "--no-packing")
    unpacked_model = ravlt.Model.load(models["t"])
    session = ravlt.Session(unpacked_model, threads=2, pack_weights=False)
    assert session.pack_weights is False
    y = session.run(x)
    assert np.array_equal(y, np.load(tmp_path / "y.npy"))
    packed_model = ravlt.Model.load(models["t"])
    assert packed_model.copied_weight_bytes == 0 and packed_model.weight_packing_seconds == 0
    packed = ravlt.Session(packed_model, threads=2, defer_packing=False)
    assert packed.pack_weights is True and packed.defer_packing is False
    want = packed.run(x).astype(np.float64)
    assert np.linalg.norm(y - want) / np.linalg.norm(want) < 1e-5
    # What each packed: only the convolutions' weights where oneDNN has a
    # brgemm matmul (AVX-512 and up), every weight below that.
    assert packed_model.weight_packing_seconds > 0
    file_bytes = os.path.getsize(models["t"])
    assert packed_model.copied_weight_bytes > file_bytes * 0.9
    if brgemm_reads_stored_weights():
        assert 0 < unpacked_model.copied_weight_bytes < file_bytes / 4
        assert unpacked_model.mapped_resident_bytes > file_bytes * 0.8
        assert packed_model.mapped_resident_bytes < unpacked_model.mapped_resident_bytes
    else:
        assert unpacked_model.copied_weight_bytes == packed_model.copied_weight_bytes
    digits = ravlt.Model.load(models["digits"])
    got = ravlt.Classifier(digits, threads=2, pack_weights=False).classify(digit_files[:4])
    want = ravlt.Classifier(digits, threads=2).classify(digit_files[:4])
    for a, b in zip(got, want):
        assert [p.index for p in a] == [p.index for p in b]
        np.testing.assert_allclose([p.probability for p in a], [p.probability for p in b],
                                   atol=1e-5)


def test_packing_deferred_past_the_first_run(models):
    """defer_packing=True: a Session's first run reads the weights in place
    and they are packed after it; the next call waits for that
    (deferred_packing() says how long), and every run is within 1e-5 of a
    session that packed before its first."""
    x = random_input((2, 3, 61, 45), seed=11)
    want = ravlt.Session(ravlt.Model.load(models["t"]), threads=2, defer_packing=False).run(x)
    model = ravlt.Model.load(models["t"])
    assert ravlt.Session(model, threads=2).defer_packing is False  # the default
    session = ravlt.Session(model, threads=2, defer_packing=True)
    first = session.run(x)
    assert session.deferred_packing() == {"done": False, "seconds": 0.0, "waited_seconds": 0.0,
                                          "error": ""}
    second = session.run(x)
    deferred = session.deferred_packing()
    assert deferred["error"] == ""
    if brgemm_reads_stored_weights():
        assert deferred["done"] and deferred["seconds"] > 0 and deferred["waited_seconds"] > 0
    else:  # every weight was packed by the plan: nothing deferred
        assert not deferred["done"]
    assert model.copied_weight_bytes > os.path.getsize(models["t"]) * 0.9
    for y in (first, second):
        assert np.linalg.norm(y - want) / np.linalg.norm(want) < 1e-5
    # A session that goes away right after its first run stops its packing.
    for _ in range(2):
        ravlt.Session(ravlt.Model.load(models["t"]), threads=2, defer_packing=True).run(x)
    with pytest.raises(TypeError):
        ravlt.Session(model, defer_packing="yes")


def test_profile_and_node_macs(models):
    """profile=True times every op: per kind (largest first), per node in
    graph order, summed over the runs counted by runs; Model.node_macs gives
    each node's multiply-adds, summing to what info() counts; without
    profile=True the profile is an error, not zeros."""
    m = ravlt.Model.load(models["t"])
    session = ravlt.Session(m, threads=2, profile=True)
    assert session.profiling is True and session.runs == 0
    x = random_input((2, 3, 97, 75), seed=9)
    session.run(x)
    session.run_all(x)
    assert session.runs == 2
    kinds = session.profile()
    seconds = [k["seconds"] for k in kinds]
    assert seconds == sorted(seconds, reverse=True) and all(s >= 0 for s in seconds)
    assert {"Linear", "SoftmaxAttention", "RalaAttention", "LayerNorm"} <= {k["op"] for k in kinds}
    nodes = session.node_profile()
    assert sum(k["nodes"] for k in kinds) == len(nodes)
    assert sum(n["seconds"] for n in nodes) == pytest.approx(sum(seconds), rel=1e-9)
    assert sum(n["seconds"] for n in nodes if n["op"] == "Linear") == pytest.approx(
        next(k["seconds"] for k in kinds if k["op"] == "Linear"), rel=1e-9)
    copies = session.copy_profile()
    assert set(copies) == {"input_seconds", "output_seconds"}
    work = m.node_macs([2, 3, 97, 75])
    assert [w["name"] for w in work] == [n["name"] for n in nodes]
    assert sum(w["macs"] for w in work) == pytest.approx(2 * m.info(size=(97, 75))["macs"],
                                                         rel=1e-9)
    assert all(w["macs"] == 0 for w in work if w["op"] == "LayerNorm")
    assert all(w["macs"] > 0 for w in work if w["op"] in ("Linear", "SoftmaxAttention"))
    with pytest.raises(ravlt.Error, match="input"):
        m.node_macs([2, 3, 97])
    plain = ravlt.Session(m, threads=2)
    assert plain.profiling is False
    plain.run(x)
    for call in (plain.profile, plain.node_profile, plain.copy_profile):
        with pytest.raises(ravlt.Error, match=r"make it with Session\(model, profile=True\)"):
            call()


def test_input_read_in_place_and_conversions(models):
    session = ravlt.Session(ravlt.Model.load(models["digits"]), threads=2)
    x = random_input((2, 3, 64, 64), seed=5)
    y = session.run(x)
    assert session.last_input_address == x.ctypes.data  # the engine read x's own buffer
    y[...] = 0  # outputs are the caller's, not a view of the session's memory
    assert not np.array_equal(session.run(x), y)
    for converted in (x.astype(np.float64), x.astype(np.float16).astype(np.float64)):
        out = session.run(converted)
        assert session.last_input_address != converted.ctypes.data
        assert np.array_equal(out, session.run(converted.astype(np.float32)))
    ints = (x * 10).astype(np.int32)
    assert np.array_equal(session.run(ints), session.run(ints.astype(np.float32)))
    strided = np.asfortranarray(x)
    assert np.array_equal(session.run(strided), session.run(x))
    assert np.array_equal(session.run(x.tolist()), session.run(x))


def test_classifier_equals_cli_on_the_held_out_digits(models, digit_files):
    expected = cli_classify(models["digits"], digit_files)
    m = ravlt.Model.load(models["digits"])
    results = ravlt.Classifier(m, threads=2, batch_size=64).classify(digit_files)
    assert len(results) == 360
    for path, top in zip(digit_files, results):
        e = expected[os.path.abspath(path)]
        assert [p.index for p in top] == e["indices"], path
        assert [p.label for p in top] == e["labels"], path
        np.testing.assert_allclose([p.probability for p in top], e["probabilities"], atol=1e-6)


def test_classifier_items_of_every_kind_agree(models, digit_files):
    m = ravlt.Model.load(models["digits"])
    c = ravlt.Classifier(m, top_k=3, threads=2)
    files = digit_files[:4]
    by_path = c.classify(files)
    by_bytes = c.classify([open(f, "rb").read() for f in files])
    by_array = c.classify([ravlt.load_image(f) for f in files])
    by_pathlike = c.classify([pathlib.Path(f) for f in files])
    for a, b, d, e in zip(by_path, by_bytes, by_array, by_pathlike):
        for results in (b, d, e):
            assert [p.index for p in results] == [p.index for p in a]
            np.testing.assert_allclose([p.probability for p in results],
                                       [p.probability for p in a], atol=1e-6)
    p = by_path[0][0]
    assert isinstance(p, ravlt.Prediction) and isinstance(p.index, int)
    assert p.label == m.labels[p.index] and 0 < p.probability <= 1
    assert "Prediction(index=" in repr(p)


def test_embed_equals_cli(models, digit_files, tmp_path):
    files = digit_files[:7]
    run_cli("embed", "-m", models["digits"], *files, "-o", tmp_path / "e.npy", "--threads", 2)
    expected = np.load(tmp_path / "e.npy")
    rows, errors = ravlt.Classifier(ravlt.Model.load(models["digits"]), threads=2).embed(files)
    assert errors == [None] * 7
    assert rows.shape == (7, 256) and rows.dtype == np.float32
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)


def test_preprocess_is_what_the_classifier_runs(models, digit_files):
    m = ravlt.Model.load(models["digits"])
    x = m.preprocess(digit_files[0])
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    logits = ravlt.Session(m, threads=2).run(x)[0]
    top = ravlt.Classifier(m, threads=2).classify([digit_files[0]])[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert top[0].index == int(np.argmax(logits))
    assert abs(top[0].probability - probs.max()) < 1e-6
    np.testing.assert_array_equal(m.preprocess(open(digit_files[0], "rb").read()), x)


def test_devices_and_precisions():
    assert ravlt.device_available("cpu")
    assert ravlt.precision_available("cpu", "fp32")
    assert not ravlt.precision_available("cpu", "fp16")
    assert ravlt.device_description("cpu").startswith("cpu")


def test_help_and_stubs():
    assert "NCHW" in ravlt.Session.run.__doc__
    assert ravlt.Classifier.__doc__ and ravlt.Model.load.__doc__
    if os.environ.get("RAVLT_EXPECT_MODULE"):
        return  # the sanitizer build makes no stubs (python/CMakeLists.txt)
    stub = os.path.join(os.path.dirname(ravlt._ravlt.__file__), "_ravlt.pyi")
    assert os.path.exists(stub), stub
    text = open(stub).read()
    assert "class Session" in text and "def node_profile(self) -> list[dict[str, Any]]" in text
    assert os.path.exists(os.path.join(os.path.dirname(ravlt.__file__), "py.typed"))
