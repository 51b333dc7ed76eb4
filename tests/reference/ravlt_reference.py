"""RAVLT in PyTorch, written from the spec (spec/ravlt.md), for tests only.

Parameter names and shapes are those of the authors' checkpoints (spec §4),
so a state dict of this module is a checkpoint the converter must accept.
It is checked against the authors' own model through the golden tensors in
shared/data/golden (test_reference_golden.py).
"""

import math
from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class RavltConfig:
    embed_dims: List[int]
    depths: List[int]
    num_heads: List[int]
    mlp_ratio: float = 3.5
    layer_scales: List[bool] = field(default_factory=lambda: [True] * 4)
    projection: int = 1024
    num_classes: int = 1000
    # "l": RALA (spec §3.3), "v": softmax attention (§3.4)
    attention: str = "llvv"

    def ffn_hidden(self, stage):
        return int(self.mlp_ratio * self.embed_dims[stage])


VARIANTS = {
    "T": RavltConfig([64, 128, 256, 512], [2, 2, 6, 2], [1, 2, 4, 8]),
    "S": RavltConfig([64, 128, 320, 512], [3, 5, 9, 3], [1, 2, 5, 8]),
    "B": RavltConfig([96, 192, 384, 512], [4, 6, 12, 6], [1, 2, 6, 8]),
    "L": RavltConfig([96, 192, 448, 640], [4, 7, 19, 8], [1, 2, 7, 10]),
    # Small custom config: odd head dims (24, 20, 36, 44 are not 64/96),
    # layer scale only in some stages, few classes.
    "custom": RavltConfig([48, 40, 72, 88], [1, 2, 2, 1], [2, 2, 2, 2], mlp_ratio=3.0,
                          layer_scales=[False, True, False, True], projection=96,
                          num_classes=11),
}


def conv_bn(cin, cout, stride):
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout)]


class PatchEmbed(nn.Module):
    def __init__(self, in_chans, dim):
        super().__init__()
        h = dim // 2
        self.proj = nn.Sequential(
            *conv_bn(in_chans, h, 2), nn.GELU(),
            *conv_bn(h, h, 1), nn.GELU(),
            *conv_bn(h, h, 1), nn.GELU(),
            *conv_bn(h, dim, 2))

    def forward(self, x):
        return self.proj(x)


class PatchMerging(nn.Module):
    def __init__(self, dim, out_dim):
        super().__init__()
        self.reduction = nn.Conv2d(dim, out_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_dim)

    def forward(self, x):
        return self.norm(self.reduction(x))


class RoPE(nn.Module):
    """Holds the angle buffer (spec §3.5) and makes sin/cos for an h x w grid."""

    def __init__(self, head_dim):
        super().__init__()
        quarter = head_dim // 4
        a = 1.0 / (10000 ** torch.linspace(0, 1, quarter))
        self.register_buffer("angle", a.unsqueeze(-1).repeat(1, 2).flatten())

    def forward(self, h, w):
        angle = self.angle.float()
        ys = torch.arange(h, dtype=torch.float32, device=angle.device)
        xs = torch.arange(w, dtype=torch.float32, device=angle.device)
        th_y = ys[:, None, None] * angle[None, None, :]  # (h, 1, d/2)
        th_x = xs[None, :, None] * angle[None, None, :]  # (1, w, d/2)
        theta = torch.cat([th_y.expand(h, w, -1), th_x.expand(h, w, -1)], dim=-1)
        theta = theta.reshape(h * w, -1)  # (L, d)
        return torch.sin(theta), torch.cos(theta)


def rotate(u, sin, cos):
    """rope(u) = u cos + r(u) sin, r pairs (u0,u1) -> (-u1, u0). u: (..., L, d)."""
    pairs = u.reshape(*u.shape[:-1], -1, 2)
    r = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(u.shape)
    return u * cos + r * sin


class Attention(nn.Module):
    def __init__(self, dim, heads, kind):
        super().__init__()
        self.heads = heads
        self.kind = kind
        self.qkvo = nn.Conv2d(dim, 4 * dim, 1)
        self.lepe = nn.Conv2d(dim, dim, 5, 1, 2, groups=dim)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x, sin, cos):
        b, c, h, w = x.shape
        n, d, L = self.heads, c // self.heads, h * w
        t = self.qkvo(x)
        q, k, v, o = t.chunk(4, dim=1)
        lepe = self.lepe(v)

        def heads_of(u):  # (b, c, h, w) -> (b, n, L, d)
            return u.reshape(b, n, d, L).transpose(-1, -2)

        q, k, v = heads_of(q), heads_of(k), heads_of(v)
        if self.kind == "l":
            q = F.elu(q) + 1
            k = F.elu(k) + 1
            qm = q.mean(dim=-2, keepdim=True)  # (b, n, 1, d)
            eff = torch.softmax((qm * d ** -0.5) @ k.transpose(-1, -2), dim=-1)  # (b, n, 1, L)
            k = k * eff.transpose(-1, -2) * L
            qr, kr = rotate(q, sin, cos), rotate(k, sin, cos)
            kbar = k.mean(dim=-2, keepdim=True)
            z = 1.0 / ((q * kbar).sum(dim=-1, keepdim=True) + 1e-6)
            kv = (kr * L ** -0.5).transpose(-1, -2) @ (v * L ** -0.5)
            res = (qr @ kv) * z
        else:
            qr, kr = rotate(q, sin, cos), rotate(k, sin, cos)
            attn = torch.softmax((qr * d ** -0.5) @ kr.transpose(-1, -2), dim=-1)
            res = attn @ v
        res = res.transpose(-1, -2).reshape(b, c, h, w)
        return self.proj((res + lepe) * o)


class ChannelLayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)

    def forward(self, x):
        h = F.gelu(self.fc1(x))
        h = h + self.dwconv(h)
        return self.fc2(h)


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, layer_scale, kind):
        super().__init__()
        self.pos = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = Attention(dim, heads, kind)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = FFN(dim, hidden)
        self.layer_scale = layer_scale
        if layer_scale:
            self.gamma_1 = nn.Parameter(torch.ones(1, dim, 1, 1))
            self.gamma_2 = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x, sin, cos):
        x = x + self.pos(x)
        if self.layer_scale:
            x = x + self.gamma_1 * self.attn(self.norm1(x), sin, cos)
            x = x + self.gamma_2 * self.ffn(self.norm2(x))
        else:
            x = x + self.attn(self.norm1(x), sin, cos)
            x = x + self.ffn(self.norm2(x))
        return x


class Stage(nn.Module):
    def __init__(self, cfg, s):
        super().__init__()
        dim = cfg.embed_dims[s]
        self.RoPE = RoPE(dim // cfg.num_heads[s])
        self.blocks = nn.ModuleList(
            Block(dim, cfg.num_heads[s], cfg.ffn_hidden(s), cfg.layer_scales[s], cfg.attention[s])
            for _ in range(cfg.depths[s]))
        self.downsample = PatchMerging(dim, cfg.embed_dims[s + 1]) if s < 3 else None

    def blocks_forward(self, x):
        """The stage's blocks: its output before the downsampling."""
        sin, cos = self.RoPE(x.shape[2], x.shape[3])
        # A model converted to 16 bits (model.half()) rounds its tables to
        # that type (made in float32 from float32 angles); under autocast
        # the parameters, and the tables, stay float32.
        dtype = next(self.blocks.parameters()).dtype
        if dtype != sin.dtype:
            sin, cos = sin.to(dtype), cos.to(dtype)
        for blk in self.blocks:
            x = blk(x, sin, cos)
        return x

    def forward(self, x):
        x = self.blocks_forward(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class Ravlt(nn.Module):
    def __init__(self, cfg: RavltConfig, in_chans=3):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(in_chans, cfg.embed_dims[0])
        self.layers = nn.ModuleList(Stage(cfg, s) for s in range(4))
        self.proj = nn.Conv2d(cfg.embed_dims[-1], cfg.projection, 1)
        self.norm = nn.BatchNorm2d(cfg.projection)
        self.head = nn.Conv2d(cfg.projection, cfg.num_classes, 1)

    def forward(self, x, return_stages=False):
        outs = {}
        x = self.patch_embed(x)
        outs["patch_embed"] = x
        for s, layer in enumerate(self.layers):
            x = layer(x)
            outs[f"stage{s}"] = x
        logits = self.head(self.pooled(x)).flatten(1)
        return (logits, outs) if return_stages else logits

    def pooled(self, x):
        x = self.norm(self.proj(x))
        x = x * torch.sigmoid(x)
        return x.mean(dim=(2, 3), keepdim=True)

    def forward_features(self, x):
        """The embedding: what the head reads (after proj, BatchNorm, swish
        and global average pooling), flattened to (N, projection)."""
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.pooled(x).flatten(1)


class RavltBackbone(nn.Module):
    """The detection / segmentation backbone (the authors' GLTA, mmdetection
    and mmsegmentation): the classifier's trunk with no proj, norm or head;
    stage i's output taken before its downsampling, through extra_norms.i (a
    LayerNorm over channels, eps 1e-6). Its state dict is the checkpoint's
    backbone.* keys."""

    def __init__(self, cfg: RavltConfig, in_chans=3):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(in_chans, cfg.embed_dims[0])
        self.layers = nn.ModuleList(Stage(cfg, s) for s in range(4))
        self.extra_norms = nn.ModuleList(ChannelLayerNorm(cfg.embed_dims[s]) for s in range(4))

    def forward(self, x, out_indices=(0, 1, 2, 3)):
        """{"stage1": ..., "stage4": ...} for the stages in out_indices."""
        outs = {}
        x = self.patch_embed(x)
        for s, layer in enumerate(self.layers):
            y = layer.blocks_forward(x)
            if s in out_indices:
                outs[f"stage{s + 1}"] = self.extra_norms[s](y)
            if s == max(out_indices):
                break
            x = layer.downsample(y)
        return outs


def randomize(model: nn.Module, seed: int):
    """Fresh weights in which every parameter matters: non-zero biases,
    BatchNorm statistics far from identity, layer scales far from 1, and
    scales that keep activations of a deep model in a sane range."""
    g = torch.Generator().manual_seed(seed)

    def rand(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma_1") or name.endswith("gamma_2"):
                p.copy_(rand(p.shape, 0.2, 0.6) * torch.sign(rand(p.shape, -1, 1)))
            elif p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif ".norm" in name and name.endswith("weight") and "downsample" not in name:
                p.copy_(rand(p.shape, 0.5, 1.5))  # LayerNorm weight
            elif name.endswith("weight"):  # BatchNorm weight
                p.copy_(rand(p.shape, 0.5, 1.5))
            else:  # biases
                p.copy_(rand(p.shape, -0.2, 0.2))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(rand(b.shape, -0.5, 0.5))
            elif name.endswith("running_var"):
                b.copy_(rand(b.shape, 0.5, 2.0))
            elif name.endswith("num_batches_tracked"):
                b.fill_(12345)
    return model


def parameter_count(state_dict):
    """Learned parameters, as the paper counts them: no BatchNorm statistics,
    no RoPE buffers."""
    skip = ("running_mean", "running_var", "num_batches_tracked", "RoPE.angle")
    return sum(v.numel() for k, v in state_dict.items() if not k.endswith(skip))
