"""Dense attention, the peer of build/bin/sparse_attention_bench: forward + backward of
torch.nn.functional.scaled_dot_product_attention (FlashAttention / cuDNN as PyTorch picks) on
q, k, v of [1, heads, seq, head_dim], bidirectional, the same dtype; the median of --iters
timed steps and the peak of memory allocated during a step beyond q, k, v and the output
gradient. One line of JSON per sequence length.

    python3 bench/peers/sparse_attention_peer.py --seq 4096 8192 16384
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seq", type=int, nargs="+", default=[4096, 8192, 16384])
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head_dim", type=int, default=64)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    a = p.parse_args()
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    for seq in a.seq:
        torch.manual_seed(0)
        shape = (1, a.heads, seq, a.head_dim)
        q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
        g = torch.randn(shape, device="cuda", dtype=dtype)

        def step():
            q.grad = k.grad = v.grad = None
            F.scaled_dot_product_attention(q, k, v).backward(g)

        for _ in range(a.warmup):
            step()
        torch.cuda.synchronize()
        q.grad = k.grad = v.grad = None
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        peak = torch.cuda.max_memory_allocated() - before
        print(json.dumps({"impl": "sdpa", "seq": seq, "heads": a.heads, "head_dim": a.head_dim, "dtype": a.dtype,
                          "density": 1.0, "ms": statistics.median(times), "peak_mib": peak / 2**20,
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
