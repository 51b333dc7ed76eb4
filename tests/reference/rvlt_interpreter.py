"""Reads a .rvlt model file without any of the engine's code and runs its
graph with PyTorch, op by op, as rvlt.fbs defines each op.

This is the test oracle for the converter: a converted model run here must
give the reference model's logits (test_converted_graph.py), which proves the
graph and every conversion-time rewrite (BatchNorm, layer scale and identity
folding, fused activations and residuals) equivalent to the original network.

The FlatBuffers classes come from `flatc --python` on formats/rvlt/rvlt.fbs
(the build puts them in build/generated/python); pass that folder to
load_schema() or set RAVLT_SCHEMA_PY.
"""

import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

FOOTER = b"RVLTSUM1"


def load_schema(folder=None):
    folder = folder or os.environ.get("RAVLT_SCHEMA_PY")
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    from ravlt.fb import Model
    return Model


class RvltFile:
    """The graph and constants of a .rvlt file, read with FlatBuffers' Python
    runtime. Constants come back as float64 torch tensors."""

    def __init__(self, path, schema_folder=None):
        load_schema(schema_folder)
        from ravlt.fb import (AttentionAttrs, ChannelSliceAttrs, Conv2dAttrs, LayerNormAttrs,
                              LinearAttrs, Model, OpAttrs)
        self._attr_classes = {
            OpAttrs.OpAttrs.Conv2dAttrs: Conv2dAttrs.Conv2dAttrs,
            OpAttrs.OpAttrs.LinearAttrs: LinearAttrs.LinearAttrs,
            OpAttrs.OpAttrs.LayerNormAttrs: LayerNormAttrs.LayerNormAttrs,
            OpAttrs.OpAttrs.ChannelSliceAttrs: ChannelSliceAttrs.ChannelSliceAttrs,
            OpAttrs.OpAttrs.AttentionAttrs: AttentionAttrs.AttentionAttrs,
        }
        with open(path, "rb") as f:
            self.buf = f.read()
        assert self.buf[-16:-8] == FOOTER, "footer missing"
        (size,) = struct.unpack_from("<I", self.buf, 0)
        assert self.buf[8:12] == b"RVLT", "identifier missing"
        self.model = Model.Model.GetRootAs(self.buf, 4)
        self.data_start = (4 + size + 63) // 64 * 64
        self.graph = self.model.Graph()
        self.metadata = self.model.Metadata()

    def tensor(self, i):
        return self.graph.Tensors(i)

    def tensor_name(self, i):
        return self.tensor(i).Name().decode()

    def constant(self, i):
        t = self.tensor(i)
        assert t.Constant()
        shape = [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []
        start = self.data_start + t.DataOffset()
        raw = self.buf[start:start + t.DataLength()]
        dtype = t.Dtype()
        if dtype == 0:
            arr = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
        elif dtype == 1:
            arr = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float32))
        elif dtype == 2:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = torch.from_numpy(bits.view(np.float32).copy())
        else:
            raise ValueError(f"dtype {dtype}")
        return arr.double().reshape(shape)

    def constants(self):
        """{name: tensor} of every constant."""
        return {self.tensor_name(i): self.constant(i)
                for i in range(self.graph.TensorsLength()) if self.tensor(i).Constant()}

    def attrs(self, node):
        cls = self._attr_classes.get(node.AttrsType())
        if cls is None:
            return None
        table = node.Attrs()
        a = cls()
        a.Init(table.Bytes, table.Pos)
        return a

    def nodes(self):
        for k in range(self.graph.NodesLength()):
            yield self.graph.Nodes(k)


def activate(x, act):
    if act == 1:
        return F.gelu(x)
    if act == 2:
        return x * torch.sigmoid(x)
    return x


def rope_tables(angle, h, w):
    """sin, cos of shape (h*w, d): first half of d by row, second by column."""
    ys = torch.arange(h, dtype=torch.float32)[:, None] * angle.float()[None, :]
    xs = torch.arange(w, dtype=torch.float32)[:, None] * angle.float()[None, :]
    theta = torch.cat([ys[:, None, :].expand(h, w, -1), xs[None, :, :].expand(h, w, -1)], -1)
    theta = theta.reshape(h * w, -1)
    return torch.sin(theta).double(), torch.cos(theta).double()


def rope(u, sin, cos):
    p = u.reshape(*u.shape[:-1], -1, 2)
    r = torch.stack([-p[..., 1], p[..., 0]], -1).reshape(u.shape)
    return u * cos + r * sin


def attention(qkvo, lepe, angle, heads, head_dim, rala):
    n, h, w, c4 = qkvo.shape
    c = c4 // 4
    L = h * w
    t = qkvo.reshape(n, L, 4, heads, head_dim)  # channels: [q | k | v | o], head-major
    q, k, v = (t[:, :, i].transpose(1, 2) for i in range(3))  # (n, heads, L, d)
    o = qkvo[..., 3 * c:]
    sin, cos = rope_tables(angle, h, w)
    if rala:
        q = F.elu(q) + 1
        k = F.elu(k) + 1
        qm = q.mean(2, keepdim=True)
        eff = torch.softmax((qm @ k.transpose(-1, -2)) / math.sqrt(head_dim), -1)
        k = k * eff.transpose(-1, -2) * L
        kbar = k.mean(2, keepdim=True)
        z = 1 / ((q * kbar).sum(-1, keepdim=True) + 1e-6)
        kv = rope(k, sin, cos).transpose(-1, -2) @ v / L
        res = (rope(q, sin, cos) @ kv) * z
    else:
        s = rope(q, sin, cos) @ rope(k, sin, cos).transpose(-1, -2) / math.sqrt(head_dim)
        res = torch.softmax(s, -1) @ v
    res = res.transpose(1, 2).reshape(n, h, w, c)
    return (res + lepe) * o


def run(rvlt: RvltFile, x: torch.Tensor):
    """Runs the graph on NCHW input `x` in float64; returns the outputs."""
    from ravlt.fb import OpType as Op
    values = {}
    g = rvlt.graph
    values[g.Inputs(0)] = x.double()
    const_cache = {}

    def get(i):
        if rvlt.tensor(i).Constant():
            if i not in const_cache:
                const_cache[i] = rvlt.constant(i)
            return const_cache[i]
        return values[i]

    for node in rvlt.nodes():
        op = node.Op()
        ins = [get(node.Inputs(i)) for i in range(node.InputsLength())]
        a = rvlt.attrs(node)
        if op == Op.OpType.ToChannelsLast:
            y = ins[0].permute(0, 2, 3, 1)
        elif op == Op.OpType.Conv2d:
            xc = ins[0].permute(0, 3, 1, 2)
            y = F.conv2d(xc, ins[1], ins[2], stride=(a.StrideH(), a.StrideW()),
                         padding=(a.PadH(), a.PadW()), groups=a.Groups())
            y = activate(y, a.Activation()).permute(0, 2, 3, 1)
        elif op == Op.OpType.Linear:
            y = activate(ins[0] @ ins[1].T + ins[2], a.Activation())
            if len(ins) == 4:
                y = y + ins[3]
        elif op == Op.OpType.LayerNorm:
            y = F.layer_norm(ins[0], ins[1].shape, ins[1], ins[2], a.Epsilon())
        elif op == Op.OpType.ChannelSlice:
            y = ins[0][..., a.Begin():a.End()]
        elif op in (Op.OpType.RalaAttention, Op.OpType.SoftmaxAttention):
            y = attention(ins[0], ins[1], ins[2], a.Heads(), a.HeadDim(),
                          op == Op.OpType.RalaAttention)
        elif op == Op.OpType.GlobalAvgPool:
            y = ins[0].mean(dim=(1, 2))
        elif op == Op.OpType.ToChannelsFirst:
            y = ins[0].permute(0, 3, 1, 2)
        else:
            raise ValueError(f"unknown op {op}")
        values[node.Outputs(0)] = y
    return [values[g.Outputs(i)] for i in range(g.OutputsLength())]
