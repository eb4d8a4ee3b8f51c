"""PyTorch baseline for bench/executor.mjs: the three executor-reference networks rebuilt as torch
modules from their case.json descriptions (random weights: time does not depend on the values), run
on the fixtures' own inputs. Prints one JSON object: {case: {"median_ms", "min_ms", "cpu_ms"}}.

Usage: python3 bench/executor_torch.py FIXTURE_ROOT THREADS RUNS CASE [CASE ...]
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads, ctx_dim=None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim or dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim or dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, mask=None):
        ctx = x if ctx is None else ctx
        b, t, d = x.shape
        h = self.heads
        q = self.q(x).view(b, t, h, d // h).transpose(1, 2)
        k = self.k(ctx).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        v = self.v(ctx).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        s = q @ k.transpose(-1, -2) * (d // h) ** -0.5
        if mask is not None:
            s = s + mask
        return self.o((s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d))


class SdUnetBlock(nn.Module):
    """ResNet block + transformer block at C=320 (net_sd_unet_block)."""

    def __init__(self, c=320, temb=1280, ctx=768, heads=8):
        super().__init__()
        self.gn1, self.conv1 = nn.GroupNorm(32, c), nn.Conv2d(c, c, 3, padding=1)
        self.temb = nn.Linear(temb, c)
        self.gn2, self.conv2 = nn.GroupNorm(32, c), nn.Conv2d(c, c, 3, padding=1)
        self.gn3, self.proj_in = nn.GroupNorm(32, c), nn.Conv2d(c, c, 1)
        self.ln1, self.attn1 = nn.LayerNorm(c), Attention(c, heads)
        self.ln2, self.attn2 = nn.LayerNorm(c), Attention(c, heads, ctx)
        self.ln3, self.ff1, self.ff2 = nn.LayerNorm(c), nn.Linear(c, 8 * c), nn.Linear(4 * c, c)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, sample, temb, context):
        h = self.conv1(F.silu(self.gn1(sample)))
        h = h + self.temb(temb)[:, :, None, None]
        x = sample + self.conv2(F.silu(self.gn2(h)))
        b, c, hh, ww = x.shape
        t = self.proj_in(self.gn3(x)).flatten(2).transpose(1, 2)
        t = t + self.attn1(self.ln1(t))
        t = t + self.attn2(self.ln2(t), context)
        a, gate = self.ff1(self.ln3(t)).chunk(2, dim=-1)
        t = t + self.ff2(a * F.gelu(gate))
        return x + self.proj_out(t.transpose(1, 2).reshape(b, c, hh, ww))


class ClipTextEncoder(nn.Module):
    """2 pre-LN layers, 4 heads, causal mask, quick-GELU MLP (net_clip_text_encoder)."""

    def __init__(self, vocab=1000, d=256, n=77, layers=2, heads=4):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(n, d) * 0.01)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({"ln1": nn.LayerNorm(d), "attn": Attention(d, heads), "ln2": nn.LayerNorm(d),
                                              "fc1": nn.Linear(d, 4 * d), "fc2": nn.Linear(4 * d, d)}))
        self.ln = nn.LayerNorm(d)
        self.register_buffer("mask", torch.full((n, n), torch.finfo(torch.float32).min).triu(1))

    def forward(self, ids):
        x = self.tok(ids) + self.pos
        for l in self.layers:
            x = x + l["attn"](l["ln1"](x), mask=self.mask)
            m = l["fc1"](l["ln2"](x))
            x = x + l["fc2"](m * torch.sigmoid(1.702 * m))
        x = self.ln(x)
        return x, x[torch.arange(x.shape[0]), ids.argmax(-1)]


class VaeDecoderBlock(nn.Module):
    """GroupNorm+SiLU+conv3x3 x2 with residual at C=64, nearest x2, conv to 32, GN+SiLU, conv to 3."""

    def __init__(self):
        super().__init__()
        self.gn1, self.c1 = nn.GroupNorm(32, 64), nn.Conv2d(64, 64, 3, padding=1)
        self.gn2, self.c2 = nn.GroupNorm(32, 64), nn.Conv2d(64, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 32, 3, padding=1)
        self.gn3, self.c4 = nn.GroupNorm(32, 32), nn.Conv2d(32, 3, 3, padding=1)

    def forward(self, x):
        x = x + self.c2(F.silu(self.gn2(self.c1(F.silu(self.gn1(x))))))
        x = self.c3(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.c4(F.silu(self.gn3(x)))


MODELS = {"net_sd_unet_block": (SdUnetBlock, ["sample", "temb", "context"]),
          "net_clip_text_encoder": (ClipTextEncoder, ["input_ids"]),
          "net_vae_decoder_block": (VaeDecoderBlock, ["x"])}


def main():
    root, threads, runs, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for name in cases:
        if name not in MODELS:
            continue
        cls, inputs = MODELS[name]
        model = cls().eval()
        args = []
        for i in inputs:
            a = np.load(os.path.join(root, name, "inputs", i + ".npy"))
            args.append(torch.from_numpy(a.astype(np.int64) if a.dtype == np.int32 else a))
        times, cpu = [], []
        with torch.no_grad():
            for _ in range(3):
                model(*args)  # warm-up
            for _ in range(runs):
                c0, t0 = time.process_time(), time.perf_counter()
                model(*args)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        times.sort()
        cpu.sort()
        out[name] = {"median_ms": times[len(times) // 2], "min_ms": times[0], "cpu_ms": cpu[len(cpu) // 2]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
