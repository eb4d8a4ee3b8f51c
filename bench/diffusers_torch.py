"""PyTorch baseline for bench/pipeline.mjs at full size: the SDXL / SD 1.5 UNet and the SDXL VAE decoder
rebuilt as plain torch modules (diffusers is not installed here; the code follows diffusers 0.25's
UNet2DConditionModel / AutoencoderKL decoder with the AttnProcessor that torch 1.13 gets), from the configs
in ../shared/models/<model>_unet_weights.json. Random weights: time does not depend on the values. The UNet's
parameter count is checked against the JSON's `total_parameters`, so the module is the published architecture.

Prints one JSON line per component: {"component", "params", "seconds" (median of --runs after one warm-up),
"min_seconds", "cpu_seconds", "peak_rss_mib"}. fp32, torch.no_grad(), torch.set_num_threads(THREADS).

Usage: python3 bench/diffusers_torch.py [--model sdxl|sd15] [--latent 64] [--batch 2] [--threads 2]
           [--runs 1] [--components unet,vae_decoder]
"""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Attention(nn.Module):
    """diffusers Attention + AttnProcessor (baddbmm → softmax → bmm), as diffusers runs it on torch < 2."""

    def __init__(self, dim, heads, ctx_dim=None, qkv_bias=False):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(ctx_dim or dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(ctx_dim or dim, dim, bias=qkv_bias)
        self.to_out = nn.Linear(dim, dim)

    def split(self, x):
        b, t, d = x.shape
        return x.reshape(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, t, d // self.heads)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        q, k, v = self.split(self.to_q(x)), self.split(self.to_k(ctx)), self.split(self.to_v(ctx))
        scores = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype), q, k.transpose(-1, -2),
                               beta=0, alpha=self.scale)
        o = torch.bmm(scores.softmax(dim=-1), v)
        bh, t, dh = o.shape
        o = o.reshape(bh // self.heads, self.heads, t, dh).permute(0, 2, 1, 3).reshape(bh // self.heads, t, dh * self.heads)
        return self.to_out(o)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, 8 * dim)  # GEGLU
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(h * F.gelu(gate))


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, ctx_dim):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, heads, ctx_dim)
        self.norm3, self.ff = nn.LayerNorm(dim), FeedForward(dim)

    def forward(self, x, ctx):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), ctx)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    def __init__(self, c, heads, ctx_dim, layers, linear_projection, groups):
        super().__init__()
        self.linear = linear_projection
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.proj_in = nn.Linear(c, c) if linear_projection else nn.Conv2d(c, c, 1)
        self.blocks = nn.ModuleList(TransformerBlock(c, heads, ctx_dim) for _ in range(layers))
        self.proj_out = nn.Linear(c, c) if linear_projection else nn.Conv2d(c, c, 1)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        t = self.norm(x)
        if self.linear:
            t = self.proj_in(t.permute(0, 2, 3, 1).reshape(b, h * w, c))
        else:
            t = self.proj_in(t).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block in self.blocks:
            t = block(t, ctx)
        if self.linear:
            t = self.proj_out(t).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            t = self.proj_out(t.reshape(b, h, w, c).permute(0, 3, 1, 2))
        return t + x


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin, eps=eps), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout, eps=eps), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.shortcut is None else self.shortcut(x)) + h


def timestep_embedding(t, dim):
    """diffusers get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, groups, eps = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["norm_eps"]
        n = len(boc)
        tl = cfg["transformer_layers_per_block"]
        tl = tl if isinstance(tl, list) else [tl] * n
        heads = cfg["attention_head_dim"]  # diffusers passes it as the head count
        heads = heads if isinstance(heads, list) else [heads] * n
        ctx, lin, lpb = cfg["cross_attention_dim"], cfg["use_linear_projection"], cfg["layers_per_block"]
        temb = boc[0] * 4
        self.c0 = boc[0]
        self.conv_in = nn.Conv2d(cfg["in_channels"], boc[0], 3, padding=1)
        self.time = nn.Sequential(nn.Linear(boc[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.add = None
        if cfg.get("addition_embed_type") == "text_time":
            self.add_dim = cfg["addition_time_embed_dim"]
            self.add = nn.Sequential(nn.Linear(cfg["projection_class_embeddings_input_dim"], temb), nn.SiLU(),
                                     nn.Linear(temb, temb))
        self.down = nn.ModuleList()
        skips, cin = [boc[0]], boc[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            block = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(lpb):
                block["res"].append(Resnet(cin, boc[i], temb, groups, eps))
                cin = boc[i]
                if kind.startswith("CrossAttn"):
                    block["attn"].append(Transformer2D(cin, heads[i], ctx, tl[i], lin, groups))
                skips.append(cin)
            if i < n - 1:
                block["down"] = nn.Conv2d(cin, cin, 3, stride=2, padding=1)
                skips.append(cin)
            self.down.append(block)
        self.mid = nn.ModuleList([Resnet(cin, cin, temb, groups, eps),
                                  Transformer2D(cin, heads[-1], ctx, tl[-1], lin, groups),
                                  Resnet(cin, cin, temb, groups, eps)])
        self.up = nn.ModuleList()
        rboc, rheads, rtl = boc[::-1], heads[::-1], tl[::-1]
        for i, kind in enumerate(cfg["up_block_types"]):
            block = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(lpb + 1):
                block["res"].append(Resnet(cin + skips.pop(), rboc[i], temb, groups, eps))
                cin = rboc[i]
                if kind.startswith("CrossAttn"):
                    block["attn"].append(Transformer2D(cin, rheads[i], ctx, rtl[i], lin, groups))
            if i < n - 1:
                block["up"] = nn.Conv2d(cin, cin, 3, padding=1)
            self.up.append(block)
        self.norm_out = nn.GroupNorm(groups, cin, eps=eps)
        self.conv_out = nn.Conv2d(cin, cfg["out_channels"], 3, padding=1)

    def forward(self, sample, t, ctx, text_embeds=None, time_ids=None):
        emb = self.time(timestep_embedding(t, self.c0))
        if self.add is not None:
            tid = timestep_embedding(time_ids.flatten(), self.add_dim).reshape(time_ids.shape[0], -1)
            emb = emb + self.add(torch.cat([text_embeds, tid], dim=-1))
        h = self.conv_in(sample)
        skips = [h]
        for block in self.down:
            for j, res in enumerate(block["res"]):
                h = res(h, emb)
                if len(block["attn"]):
                    h = block["attn"][j](h, ctx)
                skips.append(h)
            if "down" in block:
                h = block["down"](h)
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb), ctx), emb)
        for block in self.up:
            for j, res in enumerate(block["res"]):
                h = res(torch.cat([h, skips.pop()], dim=1), emb)
                if len(block["attn"]):
                    h = block["attn"][j](h, ctx)
            if "up" in block:
                h = block["up"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeAttention(nn.Module):
    """AutoencoderKL's single-head mid-block attention over the h·w positions."""

    def __init__(self, c):
        super().__init__()
        self.group_norm = nn.GroupNorm(32, c, eps=1e-6)
        self.attn = Attention(c, 1, qkv_bias=True)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        return self.attn(t).transpose(1, 2).reshape(b, c, h, w) + x


class VaeDecoder(nn.Module):
    """SDXL base AutoencoderKL decoder: post_quant_conv, block_out_channels 128/256/512/512, layers_per_block 2."""

    def __init__(self, boc=(128, 256, 512, 512), latent=4, lpb=2):
        super().__init__()
        top = boc[-1]
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)
        self.conv_in = nn.Conv2d(latent, top, 3, padding=1)
        self.mid = nn.ModuleList([Resnet(top, top, 0, 32, 1e-6), VaeAttention(top), Resnet(top, top, 0, 32, 1e-6)])
        self.up = nn.ModuleList()
        cin = top
        rev = list(boc)[::-1]
        for i, cout in enumerate(rev):
            block = nn.ModuleDict({"res": nn.ModuleList(Resnet(cin if j == 0 else cout, cout, 0, 32, 1e-6)
                                                        for j in range(lpb + 1))})
            cin = cout
            if i < len(rev) - 1:
                block["up"] = nn.Conv2d(cout, cout, 3, padding=1)
            self.up.append(block)
        self.norm_out = nn.GroupNorm(32, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(self.post_quant_conv(z))
        h = self.mid[2](self.mid[1](self.mid[0](h)))
        for block in self.up:
            for res in block["res"]:
                h = res(h)
            if "up" in block:
                h = block["up"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, runs):
    with torch.no_grad():
        fn()  # warm-up: oneDNN primitives created, pages touched
        wall, cpu = [], []
        for _ in range(runs):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    wall.sort()
    cpu.sort()
    return {"seconds": wall[len(wall) // 2], "min_seconds": wall[0], "cpu_seconds": cpu[len(cpu) // 2]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="sdxl", choices=["sdxl", "sd15"])
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--components", default="unet,vae_decoder")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = json.load(open(os.path.join(HERE, "..", "..", "shared", "models", f"{a.model}_unet_weights.json")))
    for component in a.components.split(","):
        if component == "unet":
            cfg = spec["config"]
            model = UNet(cfg).eval()
            params = sum(x.numel() for x in model.parameters())
            if params != spec["total_parameters"]:
                raise SystemExit(f"UNet rebuild has {params} parameters, the published model {spec['total_parameters']}")
            b, s = a.batch, a.latent
            args = [torch.randn(b, cfg["in_channels"], s, s), torch.full((b,), 500), torch.randn(b, 77, cfg["cross_attention_dim"])]
            if model.add is not None:
                args += [torch.randn(b, 1280), torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]] * b)]
        elif component == "vae_decoder":
            model = VaeDecoder().eval()
            params = sum(x.numel() for x in model.parameters())
            args = [torch.randn(1, 4, a.latent, a.latent)]
        else:
            raise SystemExit(f"unknown component {component}")
        for prm in model.parameters():  # N(0, 1/fan_in) keeps activations finite through the real topology
            if prm.dim() > 1:
                nn.init.normal_(prm, std=prm[0].numel() ** -0.5)
        r = timed(lambda: model(*args), a.runs)
        print(json.dumps({"component": component, "model": a.model, "params": params, "latent": a.latent,
                          "threads": a.threads, **r, "peak_rss_mib": round(peak_rss_mib())}), flush=True)
        del model


if __name__ == "__main__":
    main()
