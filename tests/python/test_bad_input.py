"""Bad input through Python: a ravlt.Error with a message naming what is
wrong, never a crash; per-item errors returned, not raised."""

import pickle
import shutil

import numpy as np
import pytest

import ravlt


@pytest.fixture(scope="module")
def digits(models):
    return ravlt.Model.load(models["digits"])


@pytest.fixture(scope="module")
def session(digits):
    return ravlt.Session(digits, threads=1)


def test_error_is_a_runtime_error():
    assert issubclass(ravlt.Error, RuntimeError)


@pytest.mark.parametrize("x,message", [
    (np.zeros((3, 64, 64), np.float32), "expected a 4-D NCHW array (N, 3, H, W), got 3-D shape (3, 64, 64)"),
    (np.zeros((1, 1, 3, 64, 64), np.float32), "got 5-D shape"),
    (np.zeros((1, 4, 64, 64), np.float32), "expected 3 channels (N, 3, H, W), got shape (1, 4, 64, 64)"),
    (np.zeros((1, 3, 64, 64), np.complex64), "dtype complex64 is not supported"),
    (np.zeros((1, 3, 64, 64), bool), "dtype bool is not supported"),
    (np.array([["a"]]), "input: dtype <U1 is not supported"),
    (np.zeros((1, 3, 64, 64), object), "input: dtype object is not supported"),
    ("image.png", "expected a numpy array (N, 3, H, W), got str"),
    (None, "got NoneType"),
    (np.zeros((0, 3, 64, 64), np.float32), "(0, 3, 64, 64)"),
    (np.zeros((1, 3, 0, 64), np.float32), "(1, 3, 0, 64)"),
])
def test_bad_arrays(session, x, message):
    with pytest.raises(ravlt.Error, match=None) as e:
        session.run(x)
    assert message in str(e.value)
    with pytest.raises(ravlt.Error):
        session.run_all(x)


def test_non_native_byte_order_is_converted(session):
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert np.array_equal(session.run(x.astype(">f4")), session.run(x))


def test_unknown_output(session):
    with pytest.raises(ravlt.Error, match="no output 'nope' .*logits, embedding"):
        session.run_all(np.zeros((1, 3, 64, 64), np.float32), select=["nope"])


def test_missing_and_corrupt_model_files(models, tmp_path):
    with pytest.raises(ravlt.Error, match="missing.rvlt: cannot open"):
        ravlt.Model.load(tmp_path / "missing.rvlt")
    (tmp_path / "junk.rvlt").write_bytes(b"not a model at all" * 10)
    with pytest.raises(ravlt.Error, match="junk.rvlt"):
        ravlt.Model.load(tmp_path / "junk.rvlt")
    data = models["digits"].read_bytes()
    (tmp_path / "cut.rvlt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ravlt.Error, match="cut.rvlt"):
        ravlt.Model.load(tmp_path / "cut.rvlt")
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF  # a weight byte: only the checksum sees it
    (tmp_path / "flipped.rvlt").write_bytes(bytes(flipped))
    with pytest.raises(ravlt.Error, match="checksum"):
        ravlt.Model.load(tmp_path / "flipped.rvlt")
    ravlt.Model.load(tmp_path / "flipped.rvlt", verify_checksum=False)
    with pytest.raises(ravlt.Error, match="not a PyTorch checkpoint"):
        ravlt.convert(models["digits"], tmp_path / "x.rvlt")
    with pytest.raises(ravlt.Error, match="cannot open"):
        ravlt.convert(tmp_path / "none.pth", tmp_path / "x.rvlt")


def test_bad_options(digits, models):
    for kwargs, message in [({"threads": -1}, "threads must not be negative"),
                            ({"device": "tpu"}, 'device "tpu"'),
                            ({"precision": "int8"}, 'precision "int8"'),
                            ({"precision": "fp16"}, "fp16"),
                            ({"precision": "bf16", "pack_weights": False},
                             "pack_weights = false applies to precision fp32")]:
        with pytest.raises(ravlt.Error, match=message):
            ravlt.Session(digits, **kwargs)
    with pytest.raises(ravlt.Error, match="top_k must be at least 1"):
        ravlt.Classifier(digits, top_k=0)
    with pytest.raises(ravlt.Error, match="batch_size"):
        ravlt.Classifier(digits, batch_size=0)
    with pytest.raises(ravlt.Error, match="backbone"):
        ravlt.Classifier(ravlt.Model.load(models["t_det"]))
    with pytest.raises(ravlt.Error, match="size: expected"):
        digits.info(size=5)
    with pytest.raises(ravlt.Error, match="labels: pass a list"):
        ravlt.convert("a.pth", "b.rvlt", labels="labels.txt")
    with pytest.raises(ravlt.Error, match="weight type 'int8'"):
        ravlt.convert("a.pth", "b.rvlt", dtype="int8")


def test_items_that_fail_carry_their_error(digits, digit_files, tmp_path):
    c = ravlt.Classifier(digits, top_k=2, threads=1)
    (tmp_path / "text.png").write_text("not an image")
    good = open(digit_files[0], "rb").read()
    items = [digit_files[0], b"not an image", good[: len(good) // 3], 42,
             np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
             str(tmp_path / "missing.jpg"), str(tmp_path / "text.png"), bytearray(good),
             np.zeros((0, 5, 3), np.uint8)]
    results = c.classify(items)
    assert len(results) == len(items)
    ok = [not isinstance(r, ravlt.Error) for r in results]
    assert ok == [True, False, False, False, False, False, False, False, True, False]
    messages = [str(r) for r in results]
    assert messages[1].startswith("item 1: not a JPEG, PNG or BMP")
    assert messages[2].startswith("item 2: ")
    assert messages[3] == "item 3: expected a path, encoded bytes or a uint8 (H, W, 3) array, got int"
    assert "item 4: expected a uint8 RGB array (H, W, 3), got uint8 (8, 8)" == messages[4]
    assert "got float32 (8, 8, 3)" in messages[5]
    assert "missing.jpg: cannot open" in messages[6]
    assert "text.png" in messages[7]
    assert messages[9].startswith("item 9: ")
    named = c.classify([b"junk"], names=["upload.jpg"])
    assert str(named[0]).startswith("upload.jpg: not a JPEG")
    rows, errors = c.embed(items)
    assert rows.shape == (len(items), 256)
    assert [e is None for e in errors] == ok
    assert np.isnan(rows[1]).all() and not np.isnan(rows[0]).any()
    assert [str(e) for e in errors if e is not None] == [m for m, k in zip(messages, ok) if not k]


def test_not_a_list_of_items(digits):
    c = ravlt.Classifier(digits, threads=1)
    for one in ("image.png", b"bytes", np.zeros((8, 8, 3), np.uint8)):
        with pytest.raises(ravlt.Error, match="pass \\[item\\]"):
            c.classify(one)
    with pytest.raises(ravlt.Error, match="got NoneType"):
        c.classify(None)
    with pytest.raises(ravlt.Error, match="names: 1 names for 2 items"):
        c.classify([b"a", b"b"], names=["x"])
    assert c.classify([]) == []
    rows, errors = c.embed([])
    assert rows.shape == (0, 256) and errors == []


def test_model_is_not_picklable(digits):
    with pytest.raises(TypeError, match="pass the model's path"):
        pickle.dumps(digits)


def test_model_file_replaced_after_load_keeps_working(models, tmp_path):
    path = tmp_path / "m.rvlt"
    shutil.copy(models["digits"], path)
    m = ravlt.Model.load(path)
    s = ravlt.Session(m, threads=1)
    before = s.run(np.ones((1, 3, 64, 64), np.float32))
    path.unlink()  # the mapping keeps the file's pages
    assert np.array_equal(s.run(np.ones((1, 3, 64, 64), np.float32)), before)
