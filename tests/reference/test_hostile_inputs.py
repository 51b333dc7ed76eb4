#!/usr/bin/python3
"""Hostile and broken inputs through the `ravlt` tool, as a stranger's file
reaches it: checkpoints (`convert`), model files (`inspect`, `run`), images
(`classify`) and tensors (`run`). Each must end the command with exit
status 1 and one line naming the problem, within the time limit (no crash,
no hang, nothing executed). Prints the table of inputs and errors.

Every hostile file is made here, from the generated test checkpoints, by
hand-written pickles and zip archives."""

import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import warnings
import zipfile
import zlib
from collections import OrderedDict

import harness

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_samples  # noqa: E402

# (group, input, error line) for the table, in the order tried.
TABLE = []


# --- Pickles written by hand -------------------------------------------------

class Storage:
    """A storage reference: pickled as torch.save's persistent id."""

    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Global:
    """Pickles as a reference to `module.name`, which need not exist here."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # the pickler only writes callables
        raise NotImplementedError


class Call:
    """Pickles as REDUCE: `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class Pickler(pickle._Pickler):
    """The pure-Python pickler, so any global can be written by name."""

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", Global("torch", "FloatStorage"), obj.key, "cpu", obj.numel)
        return None

    def save_global(self, obj, name=None):
        if isinstance(obj, Global):
            self.write(b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            return self.save_global(obj)
        return super().save(obj, save_persistent_id)


def dumps(obj):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tensor(storage, offset, size, stride):
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), storage, offset, size, stride, False,
                OrderedDict())


def state_dict_pickle(**tensors):
    return dumps(OrderedDict(tensors))


# --- Zip archives in torch.save's layout ------------------------------------

def checkpoint_zip(path, pkl, storages=None, compress_pickle=False, extra=()):
    """archive/data.pkl plus archive/data/KEY entries, as torch.save writes."""
    storages = storages or {}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl,
                   compress_type=zipfile.ZIP_DEFLATED if compress_pickle else zipfile.ZIP_STORED)
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", b"3\n")
        for name, data in extra:
            z.writestr(name, data)


def overlapping_zip(path, pkl, storage):
    """Two central-directory entries point at one local header: the storage
    entry's record claims the bytes of data.pkl."""
    checkpoint_zip(path, pkl, {"0": storage})
    with open(path, "rb") as f:
        data = bytearray(f.read())
    eocd = data.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", data, eocd + 16)[0]
    pos, first_local = cd_offset, None
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        name = bytes(data[pos + 46:pos + 46 + name_len])
        if first_local is None:
            first_local = struct.unpack_from("<I", data, pos + 42)[0]
        elif name == b"archive/data/0":
            struct.pack_into("<I", data, pos + 42, first_local)
        pos += 46 + name_len + extra_len + comment_len
    with open(path, "wb") as f:
        f.write(data)


# --- The cases ---------------------------------------------------------------

def checkpoint_cases(tmp):
    """(input, path, error fragment) for `ravlt convert`."""
    p = lambda name: os.path.join(tmp, name)
    cases = []

    def add(name, text, fragment, pkl=None, legacy=False, **zip_args):
        if legacy:  # the pre-zip format: pickles one after another
            with open(p(name), "wb") as f:
                f.write(pkl)
        elif pkl is not None:
            checkpoint_zip(p(name), pkl, **zip_args)
        cases.append((text, p(name), fragment))

    # From the generated test checkpoints (generate_test_checkpoints.py).
    for name, text, fragment in [
            ("hostile_posix_system", "posix.system through GLOBAL", "posix.system"),
            ("hostile_eval_stack_global", "builtins.eval through STACK_GLOBAL", "builtins.eval"),
            ("hostile_subprocess", "subprocess.Popen through INST", "subprocess.Popen"),
            ("hostile_in_state_dict", "builtins.eval inside the state dict", "builtins.eval"),
            ("inert_in_state_dict", "argparse.Namespace where a tensor should be",
             "argparse.Namespace, not a tensor"),
            ("short_storage", "a storage larger than its zip entry", "but its zip entry holds"),
            ("lying_pickle_size", "data.pkl declaring more bytes than the archive holds",
             "data.pkl"),
            ("not_a_checkpoint", "a text file", "not a PyTorch checkpoint"),
            ("missing_key", "a weight missing", "missing key"),
            ("misshapen_key", "a weight of the wrong shape", "has shape (72, 215, 1, 1)")]:
        shutil.copy(harness.data(name + ".pth"), p(name + ".pth"))
        cases.append((text, p(name + ".pth"), fragment))

    add("os_system.pth", "os.system through GLOBAL, called by REDUCE", "os.system",
        b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR.")
    add("os_system_inst.pth", "os.system through INST", "os.system", b"(S'ls'\nios\nsystem\n.")
    add("stack_global_popen.pth", "subprocess.Popen through STACK_GLOBAL", "subprocess.Popen",
        b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93.")
    add("legacy_system.pth", "os.system in a legacy (pre-zip) checkpoint", "os.system",
        b"\x80\x02cos\nsystem\n(S'ls'\ntR.", legacy=True)
    add("legacy_huge_magic.pth", "a legacy checkpoint of a 10^30 magic number", "not a PyTorch",
        b"\x80\x02\x8a\x0d" + (10**30).to_bytes(13, "little") + b".", legacy=True)
    add("nested_reduce.pth", "nested REDUCE: getattr(__import__('os'), 'system')('ls')",
        "builtins.__import__",
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'ls'\ntR.")
    add("nested_reduce_inert.pth", "nested REDUCE of inert callables (an object called)",
        "an object made by calling a dict, not a dict of tensors", b"\x80\x02ccollections\nOrderedDict\n)R)R.")
    add("deep_lists.pth", "lists nested 100000 deep", "holds a list, not a dict of tensors",
        b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b".")
    add("deep_marks.pth", "100000 MARKs and no values", "underflow",
        b"\x80\x02" + b"(" * 100000 + b".")
    add("memo_missing.pth", "a memo reference to a slot never stored", "memo entry 5",
        b"\x80\x02h\x05.")
    add("memo_long_missing.pth", "LONG_BINGET to slot 2^32-1", "memo entry 4294967295",
        b"\x80\x02j\xff\xff\xff\xff.")
    storage = struct.pack("<6f", *range(6))
    add("view_past_end.pth", "a tensor view past the end of its storage",
        "view reaches element 6 of a storage of 6 elements",
        state_dict_pickle(w=tensor(Storage("0", 6), 3, (2, 2), (2, 1))), storages={"0": storage})
    add("negative_size.pth", "a negative size", "non-negative",
        state_dict_pickle(w=tensor(Storage("0", 6), 0, (-1, 2), (2, 1))), storages={"0": storage})
    add("negative_stride.pth", "a negative stride", "non-negative",
        state_dict_pickle(w=tensor(Storage("0", 6), 0, (2, 2), (-2, 1))), storages={"0": storage})
    add("negative_offset.pth", "a negative storage offset", "invalid storage offset",
        state_dict_pickle(w=tensor(Storage("0", 6), -4, (2,), (1,))), storages={"0": storage})
    add("shape_overflow.pth", "sizes whose product overflows 64 bits (2^62 x 8)", "overflows",
        state_dict_pickle(w=tensor(Storage("0", 6), 0, (2**62, 8), (8, 1))), storages={"0": storage})
    add("stride_overflow.pth", "a stride of 2^63-1", "view reaches element",
        state_dict_pickle(w=tensor(Storage("0", 6), 0, (3, 2), (2**63 - 1, 1))),
        storages={"0": storage})
    add("huge_storage.pth", "a storage declaring 2^60 elements", "declares",
        state_dict_pickle(w=tensor(Storage("0", 2**60), 0, (2,), (1,))), storages={"0": storage})
    add("missing_storage.pth", "a storage with no zip entry", "has no zip entry",
        state_dict_pickle(w=tensor(Storage("7", 6), 0, (2,), (1,))), storages={"0": storage})
    add("duplicate_entry.pth", "a zip with a duplicated entry name", "two entries have the same name",
        state_dict_pickle(w=tensor(Storage("0", 6), 0, (2,), (1,))), storages={"0": storage},
        extra=[("archive/data/0", storage)])
    bomb = zlib.compress(b"\0" * (200 << 20), 9)[2:-4]  # raw deflate of 200 MB of zeros
    add("zip_bomb.pth", "a zip bomb: 200 MB of zeros deflated to 200 KB", "zip bomb")
    write_deflated_bomb(p("zip_bomb.pth"), bomb, 200 << 20)
    overlapping_zip(p("overlapping.pth"),
                    state_dict_pickle(w=tensor(Storage("0", 6), 0, (2,), (1,))), storage)
    cases.append(("a zip whose entries overlap (two records, one local header)",
                  p("overlapping.pth"), "entries overlap"))
    return cases


def write_deflated_bomb(path, raw_deflate, size):
    """A zip whose data.pkl is `raw_deflate`, declaring `size` bytes."""
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("archive/data.pkl")
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, b"")  # placeholder, rewritten below
    # Rewrite by hand: zipfile cannot store pre-compressed data.
    name = b"archive/data.pkl"
    crc = zlib.crc32(b"\0" * size)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(raw_deflate),
                        size, len(name), 0) + name
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                          len(raw_deflate), size, len(name), 0, 0, 0, 0, 0, 0) + name
    body = local + raw_deflate
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    with open(path, "wb") as f:
        f.write(body + central + end)


def file_adder(tmp, cases):
    """add(name, text, fragment, content): writes tmp/name, records the case."""
    def add(name, text, fragment, content):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content)
        cases.append((text, path, fragment))
    return add


def model_file_cases(tmp, good):
    """(input, path, error fragment) for `ravlt inspect`."""
    p = lambda name: os.path.join(tmp, name)
    with open(good, "rb") as f:
        data = f.read()
    cases = []

    add = file_adder(tmp, cases)

    add("empty.rvlt", "an empty file", "file is empty", b"")
    add("text.rvlt", "a text file", "not a .rvlt model file", b"hello " * 100)
    add("cut_1000.rvlt", "truncated after 1000 bytes", "truncated", data[:1000])
    add("cut_footer.rvlt", "truncated by one byte", "truncated", data[:-1])
    size = struct.unpack_from("<I", data)[0]
    add("size_prefix.rvlt", "metadata size prefix pointing past the end", "metadata extends past",
        struct.pack("<I", len(data) * 2) + data[4:])
    flipped = bytearray(data)
    flipped[len(data) - 100] ^= 0x40
    add("weight_flip.rvlt", "one weight bit flipped", "checksum mismatch", bytes(flipped))
    flipped = bytearray(data)
    flipped[data.index(b"class_5")] ^= 0x20
    add("label_flip.rvlt", "one byte of a class name flipped", "checksum mismatch", bytes(flipped))
    flipped = bytearray(data)
    flipped[size // 2] ^= 0xFF
    add("metadata_flip.rvlt", "one byte in the middle of the metadata flipped", "rvlt",
        bytes(flipped))
    pth = harness.data("custom_bare.pth")
    shutil.copy(pth, p("checkpoint.rvlt"))
    cases.append(("a checkpoint given as a model file", p("checkpoint.rvlt"),
                  "not a .rvlt model file"))
    return cases


def npy_cases(tmp):
    """(input, path, error fragment) for `ravlt run`."""
    p = lambda name: os.path.join(tmp, name)
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 3, 20, 20), np.float32))
    good = buf.getvalue()
    cases = []

    add = file_adder(tmp, cases)

    def header(descr, shape, fortran=False):
        h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
        h = h.encode() + b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h

    add("truncated.npy", "truncated data", "truncated", good[:-10])
    add("magic.npy", "not an .npy file", "not a .npy file", b"hello" * 30)
    add("huge.npy", "shape (2^40, 2^40)", "too large",
        header("<f4", "(1099511627776, 1099511627776)"))
    add("float64.npy", "float64 data", "float32", header("<f8", "(1, 3, 2, 2)") + b"\0" * 96)
    add("fortran.npy", "Fortran order", "Fortran", header("<f4", "(1, 3, 2, 2)", True) + b"\0" * 48)
    add("header_len.npy", "a header length past the end", "header",
        b"\x93NUMPY\x01\x00\xff\xff{'descr'")
    add("wrong_channels.npy", "4 channels for a 3-channel model", "does not fit",
        header("<f4", "(1, 4, 8, 8)") + b"\0" * (4 * 64 * 4))
    return cases


class HostileInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.model = os.path.join(cls.tmp, "custom.rvlt")
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", cls.model)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)
        print("\n| group | input | error |\n|---|---|---|")
        for group, text, line in TABLE:
            print(f"| {group} | {text} | {line.replace('|', '/')} |")

    def check(self, group, text, args, fragment):
        try:
            p = subprocess.run([harness.ARGS.ravlt, *args], capture_output=True, text=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            self.fail(f"{text}: no answer within 120 s")
        # 1 is an error the tool reports; a signal is negative, a crash of a
        # sanitized build is another status.
        self.assertEqual(p.returncode, 1, f"{text}: status {p.returncode}: {p.stderr}")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        if args[0] == "classify":  # a line per failed image, then the count
            self.assertEqual(lines[1:], ["ravlt: 1 of 1 images could not be classified"])
            lines = lines[:1]
        self.assertEqual(len(lines), 1, f"{text}: {p.stderr}")
        self.assertIn("error", lines[0])
        self.assertIn(fragment, lines[0], text)
        TABLE.append((group, text, lines[0].replace(self.tmp + "/", "")))

    def test_checkpoints(self):
        with warnings.catch_warnings():  # zipfile warns of the duplicate it is asked to write
            warnings.simplefilter("ignore")
            cases = checkpoint_cases(self.tmp)
        for text, path, fragment in cases:
            with self.subTest(text):
                self.check("checkpoint", text, ["convert", path, "-o", path + ".rvlt"], fragment)

    def test_model_files(self):
        for text, path, fragment in model_file_cases(self.tmp, self.model):
            with self.subTest(text):
                self.check("model file", text, ["inspect", path], fragment)

    def test_images(self):
        for path, fragment in image_samples.write_broken(os.path.join(self.tmp, "images")):
            with self.subTest(os.path.basename(path)):
                self.check("image", os.path.basename(path),
                           ["classify", "--model", self.model, path], fragment)

    def test_tensors(self):
        for text, path, fragment in npy_cases(self.tmp):
            with self.subTest(text):
                self.check("tensor (.npy)", text,
                           ["run", "-m", self.model, "-i", path, "-o", path + ".out.npy"], fragment)


if __name__ == "__main__":
    harness.main()
