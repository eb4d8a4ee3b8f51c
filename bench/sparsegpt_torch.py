#!/usr/bin/env python3
"""The IST-DASLab SparseGPT reference on PyTorch (CPU), for bench/sparsegpt.mjs --torch.

Written from the algorithm as ../shared/spec/sparsegpt-gptq.md states it (sparsegpt.py `add_batch`
and `fasterprune`, unstructured mask, no quantizer): H *= n/(n+tmp); n += tmp; x *= sqrt(2/n);
H += x·xᵀ per sample; then dead columns, dampening, L = chol(H), H⁻¹ = cholesky_inverse(L),
U = chol(H⁻¹, upper), blocks of 128 columns with the adaptive mask (sort of the block's scores),
the column loop as torch ops and the lazy batch update.

  python3 bench/sparsegpt_torch.py X_FILE W_FILE OUT_PREFIX rows cols samples tokens sparsity threads

X_FILE: samples × tokens × cols float32 (one add_batch per sample, tmp = 1); W_FILE: rows × cols
float32. Writes OUT_PREFIX.json (times, CPU times, loss, peak RSS), OUT_PREFIX.mask (uint8, 1 = kept),
OUT_PREFIX.w (float32 pruned weight).
"""
import json
import math
import resource
import sys
import time

import numpy as np
import torch


def main():
    x_file, w_file, out, rows, cols, samples, tokens, sparsity, threads = sys.argv[1:10]
    rows, cols, samples, tokens, threads = int(rows), int(cols), int(samples), int(tokens), int(threads)
    sparsity = float(sparsity)
    torch.set_num_threads(threads)
    xs = np.fromfile(x_file, dtype=np.float32).reshape(samples, tokens, cols)
    W0 = torch.from_numpy(np.fromfile(w_file, dtype=np.float32).reshape(rows, cols).copy())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # add_batch, one sample (tmp = 1) per call
    c0, t0 = time.process_time(), time.perf_counter()
    H = torch.zeros((cols, cols), dtype=torch.float32)
    nsamples = 0
    for s in range(samples):
        inp = torch.from_numpy(xs[s]).reshape(-1, cols).t()
        tmp = 1
        H *= nsamples / (nsamples + tmp)
        nsamples += tmp
        inp = math.sqrt(2 / nsamples) * inp.float()
        H += inp.matmul(inp.t())
    t1, c1 = time.perf_counter(), time.process_time()

    # fasterprune
    W = W0.clone().float()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    Losses = torch.zeros(rows)
    damp = 0.01 * torch.mean(torch.diag(H))
    diag = torch.arange(cols)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    blocksize = 128
    mask = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
        thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
        mask1 = tmp <= thresh
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        mask[:, i1:i2] = mask1
        Losses += torch.sum(Losses1, 1) / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    t2, c2 = time.perf_counter(), time.process_time()

    keep = (~mask).to(torch.uint8).numpy()
    keep.tofile(out + '.mask')
    W.numpy().astype(np.float32).tofile(out + '.w')
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(out + '.json', 'w') as f:
        json.dump({
            'hessianSeconds': t1 - t0, 'pruneSeconds': t2 - t1, 'hessianCpuSeconds': c1 - c0, 'pruneCpuSeconds': c2 - c1,
            'error': float(torch.sum(Losses).item()), 'sparsity': float(mask.float().mean().item()),
            'rssBefore': rss_before, 'peakRss': peak, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
        }, f)


if __name__ == '__main__':
    main()
