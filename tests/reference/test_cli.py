#!/usr/bin/python3
"""The `ravlt convert` and `ravlt inspect` commands, as a user runs them:
every checkpoint layout converts and inspect reports its config exactly;
every bad input exits 1 with one line naming the problem, and no crash."""

import json
import os
import re
import random
import shutil
import tempfile
import unittest

import harness

LAYOUT_ENTRY = {"bare": "", "module": "", "views": "", "training": "model",
                "mmdet": "state_dict", "mmseg": "state_dict"}
DETECTOR_PARTS = {"mmdet": "neck, rpn_head, roi_head: 5 tensors not part of the backbone",
                  "mmseg": "decode_head, auxiliary_head: 3 tensors not part of the backbone"}


def brgemm_reads_stored_weights():
    """Whether oneDNN's float32 matmul can read a weight where the model file
    stores it (its brgemm kernels: AVX-512 up, unless DNNL_MAX_CPU_ISA masks
    them); elsewhere --no-packing packs every weight all the same."""
    isa = os.environ.get("DNNL_MAX_CPU_ISA", "ALL").upper()
    if isa in ("SSE41", "AVX") or isa.startswith("AVX2"):
        return False
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def out(self, name="m.rvlt"):
        return os.path.join(self.tmp, name)

    def inspect_json(self, path, *extra):
        return json.loads(harness.ravlt("inspect", path, "--json", *extra).stdout)

    def assert_fails(self, args, fragment):
        p = harness.ravlt(*args, check=False)
        self.assertEqual(p.returncode, 1, f"{args}: {p.stderr}")  # not a signal, not a crash
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("ravlt: error: "), lines[0])
        self.assertIn(fragment, lines[0])
        return lines[0]

    def assert_usage_error(self, args, fragment):
        p = harness.ravlt(*args, check=False)
        self.assertEqual(p.returncode, 2, f"{args}: {p.stderr}")
        self.assertIn(fragment, p.stderr.strip().splitlines()[0])
        self.assertIn("--help", p.stderr)

    def test_usage_errors(self):
        """Bad usage exits with status 2 and names the option and the value;
        a number out of range says what the option takes."""
        harness.ravlt("convert", harness.data("T_bare.pth"), "-o", self.out(), "-q")
        m = self.out()
        self.assert_usage_error(["bench", "-m", m, "--batch", "0"], "--batch: '0' is not a positive integer")
        self.assert_usage_error(["bench", "-m", m, "--iterations", "2.5"], "'2.5' is not a positive integer")
        self.assert_usage_error(["bench", "-m", m, "--warmup", "x"], "--warmup: 'x' is not an integer >= 0")
        self.assert_usage_error(["bench", "-m", m, "--macs", "-1"], "--macs: '-1' is not a number >= 0")
        self.assert_usage_error(["bench", "-m", m, "--macs", "inf"], "--macs: 'inf' is not a number >= 0")
        self.assert_usage_error(["run", "-m", m, "-i", m, "-o", m, "--threads", "-1"],
                                "--threads: '-1' is not an integer >= 0")
        self.assert_usage_error(["classify", "-m", m, m, "--top-k", "0"], "--top-k: '0' is not a positive")
        self.assert_usage_error(["classify", "-m", m, m, "--batch", "99999999999999999999"],
                                "is not a positive integer")
        self.assert_usage_error(["convert", harness.data("T_bare.pth"), "-o", m, "--crop", "-3"],
                                "--crop: '-3' is not a positive integer")
        self.assert_usage_error(["bench", "-m", m, "--bogus"], "--bogus")
        self.assert_usage_error([], "subcommand")
        self.assertEqual(harness.ravlt("bench", "--help").returncode, 0)
        self.assertIn("--macs FLOAT:NONNEGATIVE", harness.ravlt("bench", "--help").stdout)

    def test_every_good_checkpoint_converts_and_inspects_exactly(self):
        with open(harness.data("good.json")) as f:
            good = json.load(f)
        for name, spec in good.items():
            with self.subTest(name):
                src = harness.data(name + ".pth")
                with open(src + ".json") as f:
                    want = json.load(f)
                p = harness.ravlt("convert", src, "-o", self.out())
                self.assertIn(want["variant"], p.stdout)
                self.assertIn(f"{want['parameter_count'] / 1e6:.2f} M parameters", p.stdout)
                info = self.inspect_json(self.out())
                stages = info["stages"]
                self.assertEqual(info["variant"], want["variant"])
                self.assertEqual([s["dim"] for s in stages], want["embed_dims"])
                self.assertEqual([s["depth"] for s in stages], want["depths"])
                self.assertEqual([s["heads"] for s in stages], want["num_heads"])
                self.assertEqual([s["head_dim"] for s in stages], want["head_dims"])
                self.assertEqual([s["ffn_hidden"] for s in stages], want["ffn_hidden"])
                self.assertEqual([s["layer_scale"] for s in stages], want["layer_scales"])
                self.assertEqual([s["attention"] for s in stages], ["rala", "rala", "softmax", "softmax"])
                self.assertEqual(info["projection"], want["projection"])
                self.assertEqual(info["num_classes"], want["num_classes"])
                self.assertEqual(info["source_parameters"], want["parameter_count"])
                self.assertEqual(info["source_state_dict"], LAYOUT_ENTRY[spec["layout"]])
                self.assertEqual(info["source_file"], name + ".pth")
                self.assertEqual(len(info["labels"]), want["num_classes"])
                self.assertEqual(info["kind"], want["kind"])
                names = [o["name"] for o in info["outputs"]]
                if want["kind"] == "backbone":
                    self.assertIn(DETECTOR_PARTS[spec["layout"]], p.stdout)
                    self.assertEqual(len(info["dataset_classes"]), 8)
                    self.assertEqual(names, ["stage1", "stage2", "stage3", "stage4"])
                    self.assertEqual(info["preprocess"]["resize"], 0)
                else:
                    self.assertEqual(names, ["logits", "embedding"])
                    self.assertEqual(info["dataset_classes"], [])
                text = harness.ravlt("inspect", self.out()).stdout
                self.assertIn(want["variant"], text)
                print(f"  {name}: {want['variant']}, {info['source_parameters'] / 1e6:.2f} M parameters")

    def test_golden_checkpoint_of_the_authors(self):
        g = harness.ARGS.golden
        if not g or not os.path.isdir(g):
            self.skipTest("no golden data")
        harness.ravlt("convert", os.path.join(g, "tiny.pth"), "-o", self.out())
        info = self.inspect_json(self.out())
        s = info["stages"]
        self.assertEqual([x["dim"] for x in s], [32, 64, 144, 192])
        self.assertEqual([x["depth"] for x in s], [1, 2, 2, 1])
        self.assertEqual([x["heads"] for x in s], [2, 2, 3, 4])
        self.assertEqual([x["head_dim"] for x in s], [16, 32, 48, 48])
        self.assertEqual([x["ffn_hidden"] for x in s], [96, 192, 432, 576])
        self.assertEqual([x["layer_scale"] for x in s], [False, True, False, True])
        self.assertEqual(info["projection"], 96)
        self.assertEqual(info["num_classes"], 7)
        self.assertEqual(info["variant"], "custom")

    def test_options_reach_the_file(self):
        labels = os.path.join(self.tmp, "labels.txt")
        with open(labels, "w") as f:
            f.write("\n".join(f"thing {i}" for i in range(11)) + "\n")
        harness.ravlt("convert", harness.data("custom_training.pth"), "-o", self.out(),
                      "--state-dict", "model_ema", "--attention", "l,v,l,v", "--labels", labels,
                      "--dtype", "bf16", "--resize", "80", "--crop", "64",
                      "--mean", "0.5", "0.4", "0.3", "--std", "0.2", "0.2", "0.2")
        info = self.inspect_json(self.out())
        self.assertEqual(info["source_state_dict"], "model_ema")
        self.assertEqual([s["attention"] for s in info["stages"]], ["rala", "softmax", "rala", "softmax"])
        self.assertEqual(info["labels"][7], "thing 7")
        self.assertEqual(info["weight_dtype"], "bfloat16")
        self.assertEqual(info["preprocess"]["resize"], 80)
        self.assertEqual(info["preprocess"]["crop_h"], 64)
        self.assertAlmostEqual(info["preprocess"]["mean"][1], 0.4, places=6)

    def test_bad_checkpoints_fail_with_a_reason(self):
        with open(harness.data("bad.json")) as f:
            bad = json.load(f)
        for name, fragment in bad.items():
            with self.subTest(name):
                line = self.assert_fails(["convert", harness.data(name + ".pth"), "-o", self.out()],
                                         fragment)
                self.assertFalse(os.path.exists(self.out()))
                print(f"  {name}: {line}")

    def test_truncated_checkpoints_fail_cleanly(self):
        src = harness.data("custom_training.pth")
        with open(src, "rb") as f:
            data = f.read()
        rng = random.Random(3)
        cuts = sorted({1, 2, 3, 4, 30, 64, 100, len(data) - 1} |
                      {rng.randrange(len(data)) for _ in range(60)})
        for n in cuts:
            path = self.out(f"cut{n}.pth")
            with open(path, "wb") as f:
                f.write(data[:n])
            self.assert_fails(["convert", path, "-o", self.out()], "cut")

    def test_corrupt_model_files(self):
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", self.out())
        with open(self.out(), "rb") as f:
            data = bytearray(f.read())
        data[len(data) - 100] ^= 0x01  # inside the weights
        with open(self.out("flip.rvlt"), "wb") as f:
            f.write(data)
        self.assert_fails(["inspect", self.out("flip.rvlt")], "checksum mismatch")
        self.inspect_json(self.out("flip.rvlt"), "--no-checksum")  # trusted: opens
        with open(self.out("cut.rvlt"), "wb") as f:
            f.write(data[: len(data) // 2])
        self.assert_fails(["inspect", self.out("cut.rvlt")], "cut.rvlt")
        self.assert_fails(["inspect", harness.data("custom_bare.pth")], "not a .rvlt model file")

    def test_run_and_bench(self):
        import numpy as np
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", self.out(), "-q")
        x = np.random.RandomState(0).randn(2, 3, 41, 37).astype(np.float32)
        np.save(self.out("x.npy"), x)
        harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                      "--threads", "1")
        y = np.load(self.out("y.npy"))
        self.assertEqual(y.shape, (2, 11))
        self.assertEqual(y.dtype, np.float32)
        # Bad inputs: each a one-line error naming the problem.
        np.save(self.out("f64.npy"), x.astype(np.float64))
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("f64.npy"), "-o", self.out("y.npy")],
                          "is not float32")
        np.save(self.out("c4.npy"), np.zeros((1, 4, 32, 32), np.float32))
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("c4.npy"), "-o", self.out("y.npy")],
                          "does not fit the model's input")
        np.save(self.out("tiny.npy"), np.zeros((1, 3, 1, 1), np.float32))
        harness.ravlt("run", "-m", self.out(), "-i", self.out("tiny.npy"), "-o", self.out("y.npy"))
        np.save(self.out("fortran.npy"), np.asfortranarray(x))
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("fortran.npy"), "-o", self.out("y.npy")],
                          "Fortran")
        with open(self.out("x.npy"), "rb") as f:
            data = f.read()
        with open(self.out("cut.npy"), "wb") as f:
            f.write(data[:-10])
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("cut.npy"), "-o", self.out("y.npy")],
                          "bytes of data")
        self.assert_fails(["run", "-m", self.out(), "-i", harness.data("custom_bare.pth"), "-o",
                           self.out("y.npy")], "not a .npy file")
        # --capture: a node's output from the same run, NCHW.
        nodes = harness.ravlt("inspect", "--nodes", self.out()).stdout.split()
        self.assertIn("layers.0.downsample.reduction", nodes)
        harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y2.npy"),
                      "--capture", "layers.0.downsample.reduction=" + self.out("s0.npy"))
        self.assertEqual(np.load(self.out("s0.npy")).shape, (2, 40, 6, 5))
        np.testing.assert_array_equal(np.load(self.out("y2.npy")), y)
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                           "--capture", "layers.0"], "is not NODE=FILE.npy")
        self.assert_fails(["run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                           "--capture", "nope=" + self.out("n.npy")], "no node named 'nope'")
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--batch", "2",
                                     "--iterations", "3", "--warmup", "1", "--json").stdout)
        self.assertEqual((r["batch"], r["height"], r["width"]), (2, 64, 48))
        self.assertGreater(r["median_ms"], 0)
        self.assertGreaterEqual(r["arena_bytes"], r["lower_bound_bytes"])
        self.assertGreater(r["activation_bytes"], 0)
        self.assertGreater(r["scratch_bytes"], 0)
        self.assertLessEqual(r["activation_bytes"], r["arena_bytes"])
        self.assert_fails(["bench", "-m", self.out(), "--size", "big"], "is not HxW")
        # --defer-packing: the packing after the first run, on the ready line's heels.
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "2",
                             "--defer-packing").stdout
        if brgemm_reads_stored_weights():
            self.assertRegex(text, r"packing +after the first run \(which read the weights in "
                                   r"place\): [0-9.]+ ms on the session's own thread, the next "
                                   r"run waited [0-9.]+ ms for it\n")
        else:  # every weight packed by the plan: nothing deferred, no line
            self.assertNotIn("after the first run", text)
        self.assertNotIn("after the first run",
                         harness.ravlt("bench", "-m", self.out(), "--size", "64x48",
                                       "--iterations", "2").stdout)
        for other in ("--no-packing", "--packing"):
            self.assert_usage_error(["bench", "-m", self.out(), "--defer-packing", other],
                                    f"{other} excludes --defer-packing")
        self.assert_fails(["bench", "-m", self.out(), "--defer-packing", "--device", "cuda"],
                          "--defer-packing applies to --device cpu")
        # --macs: the GEMM floor, its rate timed after each run; the ratio is
        # the median of per-run ratios, so it lies among them (not merely
        # median / floor).
        macs = 5e7
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--batch", "2",
                                     "--iterations", "5", "--warmup", "1", "--macs", str(macs),
                                     "--threads", "2", "--json").stdout)
        self.assertGreater(r["gemm_gflops"], 1)
        self.assertAlmostEqual(r["floor_ms"], 2 * macs * 2 / (r["gemm_gflops"] * 1e9) * 1e3,
                               delta=1e-3 * r["floor_ms"])
        # Per-run ratios scatter around median / floor, not by a factor of 5
        # (an inverted or mis-scaled ratio is off by far more here).
        rough = r["median_ms"] / r["floor_ms"]
        self.assertGreater(r["floor_ratio"], rough / 5)
        self.assertLess(r["floor_ratio"], rough * 5)
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "2",
                             "--warmup", "0", "--macs", str(macs)).stdout
        self.assertRegex(text, r"floor +[0-9.]+ ms at [0-9.]+ GFLOP/s .* a run takes [0-9.]+x its floor")
        self.assertNotIn("floor", harness.ravlt("bench", "-m", self.out(), "--size", "64x48",
                                                "--iterations", "1", "--warmup", "0").stdout)
        # --profile: time per op kind and the slowest nodes, by name.
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "2",
                             "--warmup", "0", "--profile", "--profile-nodes", "3").stdout
        self.assertIn("Linear", text)
        self.assertIn("slowest 3 nodes", text)
        slowest = text.split("slowest 3 nodes")[1].strip().splitlines()[1:]
        self.assertEqual(len(slowest), 3)
        for line in slowest:
            self.assertIn(line.split()[0], nodes)
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "2",
                                     "--warmup", "0", "--profile", "--json").stdout)
        self.assertIn("RalaAttention", r["profile_ms_per_run"])

    def test_cache_dir(self):
        import numpy as np
        harness.ravlt("convert", harness.data("custom_bare.pth"), "-o", self.out(), "-q")
        cache = self.out("cache")
        seen = []
        for expected in ("written (", "read"):
            r = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "64x48",
                                         "--iterations", "1", "--warmup", "0", "--cache-dir",
                                         cache, "--json").stdout)
            self.assertTrue(r["weight_cache_status"].startswith(expected), r)
            self.assertEqual(os.path.dirname(r["weight_cache_path"]), cache)
            seen.append(r)
        self.assertEqual(seen[0]["weight_cache_bytes_used"], 0)
        self.assertEqual(seen[1]["weight_cache_bytes_used"], seen[0]["copied_weight_bytes"])
        self.assertEqual(seen[1]["copied_weight_bytes"], 0)
        self.assertGreater(seen[0]["weight_packing_ms"], 0)
        self.assertEqual(seen[1]["weight_packing_ms"], 0)
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "1",
                             "--warmup", "0", "--cache-dir", cache).stdout
        self.assertRegex(text, r"weight cache .*\.rvltpack: read; [0-9.]+ MB of packed weights used")
        self.assertRegex(text, r"weights +0\.00 MB copied out of the mapped file \(packed for the kernels\)")
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "1",
                             "--warmup", "0").stdout
        self.assertRegex(text, r"weights +[0-9.]+ MB copied out of the mapped file \(packed for the "
                               r"kernels: [0-9.]+ ms of thread time, which --cache-dir saves "
                               r"the next start\)")
        # run with and without the cache: the same bytes.
        np.save(self.out("x.npy"), np.random.RandomState(1).randn(1, 3, 40, 36).astype(np.float32))
        harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("a.npy"))
        harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("b.npy"),
                      "--cache-dir", cache)
        np.testing.assert_array_equal(np.load(self.out("a.npy")), np.load(self.out("b.npy")))
        # A cache directory that cannot be made is no error: the weights are packed.
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations",
                                     "1", "--warmup", "0", "--cache-dir", self.out("x.npy"),
                                     "--json").stdout)
        self.assertTrue(r["weight_cache_status"].startswith("not written ("), r)

    def test_work_counted_as_the_reference(self):
        """The multiply-adds `inspect` and `bench` report are those of the
        reference model run with counting hooks (every convolution, 1x1 ones
        being its Linears; the attention products: 2 L^2 d a head for softmax,
        2 L d^2 for RALA), at odd sizes, for a custom config and RAVLT-T;
        `bench --floor` divides by that count, and `--profile` gives GFLOP/s
        per op kind from it."""
        import torch
        from ravlt_reference import VARIANTS, Attention, Ravlt
        for variant, ckpt in (("custom", "custom_bare.pth"), ("T", "T_bare.pth")):
            harness.ravlt("convert", harness.data(ckpt), "-o", self.out(), "-q")
            model = Ravlt(VARIANTS[variant]).eval()
            counted = [0]

            def conv(mod, inp, out):
                counted[0] += (out.numel() // out.shape[0] * mod.in_channels // mod.groups
                               * mod.kernel_size[0] * mod.kernel_size[1])

            def attention(mod, inp, out):
                _, c, h, w = inp[0].shape
                tokens, d = h * w, c // mod.heads
                counted[0] += mod.heads * 2 * tokens * d * (tokens if mod.kind == "v" else d)

            for mod in model.modules():
                if isinstance(mod, torch.nn.Conv2d):
                    mod.register_forward_hook(conv)
                if isinstance(mod, Attention):
                    mod.register_forward_hook(attention)
            for h, w in ((97, 75), (224, 224)):
                counted[0] = 0
                with torch.no_grad():
                    model(torch.zeros(1, 3, h, w))
                info = json.loads(harness.ravlt("inspect", self.out(), "--json", "--size",
                                                f"{h}x{w}").stdout)
                self.assertAlmostEqual(info["macs"], counted[0], delta=counted[0] * 1e-8,
                                       msg=f"{variant} {h}x{w}")
            if variant == "T":
                self.assertAlmostEqual(counted[0] / 1e9, 2.61, delta=0.005)  # the published figure
                text = harness.ravlt("inspect", self.out()).stdout
                self.assertRegex(text, r"work +2\.612 GMAC an image at 224x224")
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--batch", "2", "--iterations", "3",
                                     "--warmup", "0", "--floor", "--profile", "--profile-nodes",
                                     "1000", "--json").stdout)
        self.assertAlmostEqual(r["macs_per_image"], counted[0], delta=counted[0] * 1e-5)
        self.assertAlmostEqual(r["gflops"], 2 * 2 * counted[0] / (r["median_ms"] * 1e6),
                               delta=1e-3 * r["gflops"])
        self.assertAlmostEqual(r["floor_ms"], 2 * counted[0] * 2 / (r["gemm_gflops"] * 1e9) * 1e3,
                               delta=1e-3 * r["floor_ms"])
        rates = r["profile_gflops"]
        self.assertEqual(set(rates), set(r["profile_ms_per_run"]))
        for kind in ("Linear", "Conv2d", "SoftmaxAttention", "RalaAttention"):
            self.assertGreater(rates[kind], 0, kind)
        self.assertEqual(rates["LayerNorm"], 0)  # counted as moving data, no arithmetic
        # Above the floor, by part of the network and op kind: every node in
        # one group, the groups' floors adding up to the run's floor.
        groups = r["profile_above_floor"]
        self.assertEqual({g["part"] for g in groups},
                         {"input", "patch_embed", "layers.0", "layers.1", "layers.2", "layers.3",
                          "proj", "pool", "head"})
        self.assertEqual(sum(g["nodes"] for g in groups), len(r["profile_nodes"]))
        self.assertAlmostEqual(sum(g["ms"] for g in groups), sum(r["profile_ms_per_run"].values()),
                               delta=1e-3 * sum(r["profile_ms_per_run"].values()))
        self.assertAlmostEqual(sum(g["floor_ms"] for g in groups), r["floor_ms"],
                               delta=1e-3 * r["floor_ms"])
        above = [g["ms"] - g["floor_ms"] for g in groups]
        for first, second in zip(above, above[1:]):  # (as printed: to 1e-4 ms)
            self.assertGreaterEqual(first, second - 2e-4, above)
        stage4 = [g for g in groups if g["part"] == "layers.3" and g["op"] == "Linear"]
        self.assertEqual(len(stage4), 1)
        self.assertEqual(stage4[0]["nodes"], 8)  # two blocks' qkvo, attn.proj, fc1 and fc2
        # Each listed node's own multiply-adds: over every node, the model's count.
        r = json.loads(harness.ravlt("bench", "-m", self.out(), "--iterations", "1", "--warmup",
                                     "0", "--profile", "--profile-nodes", "1000", "--json").stdout)
        self.assertAlmostEqual(sum(n["macs"] for n in r["profile_nodes"]), counted[0],
                               delta=counted[0] * 1e-6)
        self.assertEqual(next(n for n in r["profile_nodes"] if n["op"] == "LayerNorm")["macs"], 0)
        text = harness.ravlt("bench", "-m", self.out(), "--iterations", "2", "--warmup", "0",
                             "--profile").stdout
        self.assertRegex(text, r"work +2\.612 GMAC an image \(convolutions, GEMMs, attention "
                               r"products\), [0-9.]+ GFLOP/s at the median")
        self.assertRegex(text, r"\n  SoftmaxAttention +8 nodes +[0-9.]+ ms +[0-9.]+% +[0-9.]+ GFLOP/s\n")
        self.assertNotIn("above the floor", text)  # only with a floor to be above
        text = harness.ravlt("bench", "-m", self.out(), "--iterations", "2", "--warmup", "0",
                             "--profile", "--floor").stdout
        self.assertRegex(text, r"\nabove the floor \(per run, by part of the network and op kind; "
                               r"each group's own multiply-adds at [0-9.]+ GFLOP/s\): -?[0-9.]+ ms "
                               r"of [0-9.]+ profiled\n")
        # A group's row (which groups make the first dozen depends on the
        # host's speed at that moment: the JSON above has them all).
        self.assertRegex(text, r"\n  [a-z_.0-9]+ +[A-Za-z+]+ +[0-9]+ nodes +-?[0-9.]+ ms  \([0-9.]+ ms, "
                               r"its floor [0-9.]+\)\n")
        self.assertRegex(text, r"\n  and [0-9]+ more groups +-?[0-9.]+ ms together\n")

    def test_no_packing(self):
        """--no-packing: the GEMMs read the weights where the file stores them
        (where oneDNN has a brgemm matmul, AVX-512 up; below, all are packed
        as before), the same logits as packed within float32 rounding; with
        another precision it is a one-line error."""
        import numpy as np
        harness.ravlt("convert", harness.data("T_bare.pth"), "-o", self.out(), "-q")
        x = np.random.RandomState(4).randn(2, 3, 61, 45).astype(np.float32)
        np.save(self.out("x.npy"), x)
        for name, extra in (("packed", ["--packing"]), ("unpacked", ["--no-packing"])):
            harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o",
                          self.out(name + ".npy"), *extra)
        packed = np.load(self.out("packed.npy")).astype(np.float64)
        unpacked = np.load(self.out("unpacked.npy")).astype(np.float64)
        self.assertLess(np.linalg.norm(unpacked - packed) / np.linalg.norm(packed), 1e-5)
        bench = {}
        for flag in ("", "--no-packing"):
            bench[flag] = json.loads(harness.ravlt(
                "bench", "-m", self.out(), "--size", "64x48", "--iterations", "1", "--warmup", "0",
                "--json", *([flag] if flag else [])).stdout)
        self.assertTrue(bench[""]["pack_weights"])
        self.assertFalse(bench["--no-packing"]["pack_weights"])
        copied, copied_unpacked = (bench[f]["copied_weight_bytes"] for f in ("", "--no-packing"))
        if brgemm_reads_stored_weights():
            # Only the convolutions' weights (the stem, the downsampling): 12 % of RAVLT-T's.
            self.assertLess(copied_unpacked, copied / 4)
            self.assertGreater(bench["--no-packing"]["mapped_resident_bytes"],
                               bench[""]["mapped_resident_bytes"] + copied / 2)
        else:
            self.assertEqual(copied_unpacked, copied)
        text = harness.ravlt("bench", "-m", self.out(), "--size", "64x48", "--iterations", "1",
                             "--warmup", "0", "--no-packing").stdout
        self.assertRegex(text, r"weights .*; the GEMMs read the file's own: --no-packing\), "
                               r"[0-9.]+ MB of the file resident")
        p = harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                          "--no-packing", "--precision", "bf16", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr.strip(), "ravlt: error: --no-packing applies to --precision fp32 "
                         "(bf16 weights are narrowed into packed copies)")
        self.assertFalse(os.path.exists(self.out("y.npy")))
        # With packed copies in a cache directory, a load defers the check of
        # the weights they replace; a session that reads those weights from
        # the model file instead verifies the whole file first.
        cache = self.out("cache")
        bench_args = ("bench", "-m", self.out(), "--size", "64x48", "--iterations", "1",
                      "--warmup", "0", "--cache-dir", cache)
        harness.ravlt(*bench_args)
        with open(self.out(), "r+b") as f:
            f.seek(os.path.getsize(self.out()) // 2)  # inside a stage-3 weight
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0x55]))
        harness.ravlt(*bench_args)  # the damaged weight's packed copy: never read
        p = harness.ravlt(*bench_args, "--no-packing", check=False)
        if brgemm_reads_stored_weights():
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("checksum mismatch: the file is corrupt", p.stderr)
        else:  # every weight packed all the same: the cache's copy serves it again
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_packing_by_job_size(self):
        """Without --packing or --no-packing, run, classify and embed read
        the float32 weights in place for a job of at most 4 images (its
        start is shorter than the runs it slows) and pack them for a larger
        one; --verbose says which and the bytes copied. --cache-dir, bf16
        and bench pack; the two flags exclude each other."""
        import numpy as np
        from PIL import Image
        import image_samples
        harness.ravlt("convert", harness.data("T_bare.pth"), "-o", self.out(), "-q")
        in_place_here = brgemm_reads_stored_weights()

        def weights(p):
            found = [m for m in (re.fullmatch(r"ravlt: (.*); ([0-9.]+) MB copied out of the model "
                                              r"file", line) for line in p.stderr.splitlines()) if m]
            self.assertEqual(len(found), 1, p.stderr)
            m = found[0]
            return m.group(1), float(m.group(2))

        def run(batch, *extra):
            x = np.random.RandomState(batch).randn(batch, 3, 40, 36).astype(np.float32)
            np.save(self.out("x.npy"), x)
            return weights(harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o",
                                         self.out("y.npy"), "-v", *extra))

        said, in_place = run(4)
        self.assertEqual(said, "weights read in place where oneDNN can (a job of 4 images; "
                               "--packing packs them)")
        said, packed = run(5)
        self.assertEqual(said, "weights packed (a job of 5 images; --no-packing reads them in place)")
        if in_place_here:
            self.assertLess(in_place, packed / 4)  # the convolutions' weights alone
        else:
            self.assertGreater(in_place, 0.9 * packed)  # no brgemm matmul: packed all the same
        self.assertEqual(run(1, "--packing"), ("weights packed (--packing)", packed))
        self.assertEqual(run(8, "--no-packing"),
                         ("weights read in place where oneDNN can (--no-packing)", in_place))
        # --capture runs the network a second time: 3 images twice.
        self.assertEqual(run(3, "--capture", "layers.0.blocks.0.attn.qkvo=" + self.out("c.npy"))[0],
                         "weights packed (a job of 6 images; --no-packing reads them in place)")
        self.assertEqual(run(2, "--cache-dir", self.out("cache"))[0],
                         "weights packed (--cache-dir keeps them)")
        if harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                         "--precision", "bf16", check=False).returncode == 0:
            self.assertEqual(run(1, "--precision", "bf16")[0],
                             "weights packed (bf16 weights are narrowed into packed copies)")
        # Images: classify and embed count the files found.
        images = self.out("images")
        os.makedirs(images)
        for i in range(5):
            Image.fromarray(image_samples.photo(50 + i, 40, seed=i)).save(
                os.path.join(images, f"{i}.png"))
        one = os.path.join(images, "0.png")
        said, in_place = weights(harness.ravlt("classify", "-m", self.out(), one, "-v"))
        self.assertEqual(said, "weights read in place where oneDNN can (a job of 1 image; "
                               "--packing packs them)")
        said, packed = weights(harness.ravlt("embed", "-m", self.out(), images, "-o",
                                             self.out("e.npy"), "--verbose"))
        self.assertEqual(said, "weights packed (a job of 5 images; --no-packing reads them in "
                               "place)")
        if in_place_here:
            self.assertLess(in_place, packed / 4)
        else:  # packed all the same (their layouts depend on the batch: bytes differ a little)
            self.assertGreater(in_place, 0.9 * packed)
        # Quiet without --verbose; the outputs agree either way within float32 rounding.
        p = harness.ravlt("embed", "-m", self.out(), one, one, "-o", self.out("e2.npy"), "--json")
        self.assertEqual(p.stderr, "")
        harness.ravlt("embed", "-m", self.out(), one, one, "-o", self.out("e3.npy"), "--packing")
        a, b = (np.load(self.out(n)).astype(np.float64) for n in ("e2.npy", "e3.npy"))
        self.assertLess(np.linalg.norm(a - b) / np.linalg.norm(b), 1e-5)
        self.assert_usage_error(["classify", "-m", self.out(), one, "--packing", "--no-packing"],
                                "--packing excludes --no-packing")
        for flag in ("--packing", "--no-packing"):  # wrong whether or not a GPU is here
            p = harness.ravlt("classify", "-m", self.out(), one, "--device", "cuda", flag,
                              check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(p.stderr.strip(), f"ravlt: error: {flag} applies to --device cpu")
        p = harness.ravlt("classify", "-m", self.out(), one, "--tf32", check=False)
        self.assertEqual(p.stderr.strip(), "ravlt: error: --tf32 applies to --device cuda")
        self.assertIn("--packing", harness.ravlt("bench", "--help").stdout)
        bench = json.loads(harness.ravlt("bench", "-m", self.out(), "--size", "40x36",
                                         "--iterations", "1", "--warmup", "0", "--json").stdout)
        self.assertTrue(bench["pack_weights"])  # bench runs many times: packed by default

    def test_narrower_instruction_sets(self):
        """RAVLT_MAX_CPU_ISA runs our kernels as on an older CPU (AVX2 only,
        or SSE only): RAVLT-T's logits agree with the widest path's within
        float32 rounding; a value not among the names is a one-line error."""
        import numpy as np
        harness.ravlt("convert", harness.data("T_bare.pth"), "-o", self.out(), "-q")
        x = np.random.RandomState(3).randn(2, 3, 97, 75).astype(np.float32)
        np.save(self.out("x.npy"), x)
        logits = {}
        for isa in ("avx512", "avx2", "scalar"):
            harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o",
                          self.out(isa + ".npy"), "--threads", "2", env={"RAVLT_MAX_CPU_ISA": isa})
            logits[isa] = np.load(self.out(isa + ".npy")).astype(np.float64)
        for isa in ("avx2", "scalar"):
            rel = np.linalg.norm(logits[isa] - logits["avx512"]) / np.linalg.norm(logits["avx512"])
            self.assertLess(rel, 1e-5, isa)
        p = harness.ravlt("run", "-m", self.out(), "-i", self.out("x.npy"), "-o", self.out("y.npy"),
                          check=False, env={"RAVLT_MAX_CPU_ISA": "avx1024"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr.strip(), "ravlt: error: RAVLT_MAX_CPU_ISA is 'avx1024': use "
                         "scalar, avx2 or avx512")

    def test_usage_errors(self):
        p = harness.ravlt("convert", harness.data("custom_bare.pth"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--output is required", p.stderr)
        p = harness.ravlt("convert", self.out("missing.pth"), "-o", self.out(), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("does not exist", p.stderr)
        self.assert_fails(["convert", harness.data("custom_bare.pth"), "-o", self.out(),
                           "--attention", "l,q,v,v"], "'q' is not")
        p = harness.ravlt("--help")
        self.assertIn("convert", p.stdout)
        self.assertIn("inspect", p.stdout)
        cmake = open(os.path.join(os.path.dirname(__file__), "..", "..", "CMakeLists.txt")).read()
        version = re.search(r"project\(ravlt VERSION ([0-9.]+)", cmake).group(1)
        self.assertEqual(harness.ravlt("--version").stdout.split(), ["ravlt", version])


if __name__ == "__main__":
    harness.main()
