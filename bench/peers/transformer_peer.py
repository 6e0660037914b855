"""The transformer op's layer (include/deepspeed/transformer.h) written in PyTorch, the peer of
build/bin/transformer_bench: the same cases (bench/transformer/cases.h), the same block
(post-LN BERT with a padding mask, pre-LN GPT-2 with a causal mask; fused QKV projection,
explicit scaled masked softmax, dropout 0.1 on the probabilities and both residual branches,
GELU tanh), forward + backward with the input's gradient, fp16 and bf16 parameters and
activations. Modes: eager, compile (torch.compile of the same module, default mode), and
sdpa (eager, attention through F.scaled_dot_product_attention). One line of JSON per case.

    python3 bench/peers/transformer_peer.py --modes eager,compile
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name, batch, seq, hidden, heads, intermediate, pre_layer_norm, causal (cases.h)
CASES = [
    ("bert-large-s128-b64", 64, 128, 1024, 16, 4096, False, False),
    ("bert-large-s512-b16", 16, 512, 1024, 16, 4096, False, False),
    ("gpt2-xl-block-s1024-b8", 8, 1024, 1600, 25, 6400, True, True),
]


class Layer(nn.Module):
    def __init__(self, hidden, heads, intermediate, pre_ln, sdpa):
        super().__init__()
        self.heads, self.pre_ln, self.sdpa = heads, pre_ln, sdpa
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.inter = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, mask):
        b, s, h = x.shape
        d = h // self.heads
        a_in = self.norm(x) if self.pre_ln else x
        q, k, v = self.qkv(a_in).view(b, s, 3, self.heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        if self.sdpa:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + mask
            probs = F.dropout(torch.softmax(scores, -1), 0.1, self.training)
            ctx = torch.matmul(probs, v)
        ctx = ctx.permute(0, 2, 1, 3).reshape(b, s, h)
        add = x + F.dropout(self.attn_out(ctx), 0.1, self.training)
        ln2 = self.attn_norm(add)
        ff = F.dropout(self.output(F.gelu(self.inter(ln2), approximate="tanh")), 0.1, self.training)
        return add + ff if self.pre_ln else self.norm(ln2 + ff)


def time_case(case, dtype, mode, warmup, iters):
    name, b, s, h, heads, inter, pre_ln, causal = case
    layer = Layer(h, heads, inter, pre_ln, mode == "sdpa").cuda().to(dtype).train()
    fn = torch.compile(layer) if mode == "compile" else layer
    x = torch.randn(b, s, h, device="cuda", dtype=dtype, requires_grad=True)
    dy = torch.randn(b, s, h, device="cuda", dtype=dtype)
    if causal:
        mask = torch.triu(torch.full((s, s), -10000.0, device="cuda", dtype=dtype), 1).view(1, 1, s, s)
    else:
        mask = torch.zeros(b, 1, 1, s, device="cuda", dtype=dtype)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        fn(x, mask).backward(dy)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / iters


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--case", default="")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    args = p.parse_args()
    for case in CASES:
        if args.case and case[0] != args.case:
            continue
        for dtype, dname in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
            for mode in args.modes.split(","):
                ms = time_case(case, dtype, mode, args.warmup, args.iters)
                print(json.dumps({"case": case[0], "dtype": dname, "impl": "pytorch-" + mode, "ms": round(ms, 3),
                                  "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
