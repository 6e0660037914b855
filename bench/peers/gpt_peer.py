"""The GPT of examples/gpt/gpt_model.h in PyTorch, trained with DistributedDataParallel or
FSDP2 (fully_shard): the peer that bench/gpt/run_gpt_bench.py runs beside deepspeed-cpp.

Same model (sizes, tied embeddings, GPT-2 initialisation, fused causal attention), same
micro batch and sequence length, random tokens drawn the same way, bf16 compute (DDP:
fp32 weights under torch.autocast; FSDP2: MixedPrecisionPolicy(param_dtype=bf16)), fused
AdamW(lr 3e-4, betas (0.9, 0.95), weight decay 0.1), gradient clipping 1.0. Prints one line
of JSON at the end, as build/bin/gpt_train does.

    torchrun --nproc_per_node 2 bench/peers/gpt_peer.py --mode ddp --model 124M --micro_batch 16
"""
import argparse
import json
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

# vocab, seq, layers, heads, d_model (examples/gpt/gpt_model.cpp)
PRESETS = {
    "tiny": (256, 64, 2, 4, 64),
    "124M": (50304, 1024, 12, 12, 768),
    "350M": (50304, 1024, 24, 16, 1024),
    "774M": (50304, 1024, 36, 20, 1280),
    "1.3B": (50304, 1024, 24, 16, 2048),
    "2.7B": (50304, 1024, 32, 32, 2560),
    "6.7B": (50304, 1024, 32, 32, 4096),
    "13B": (50304, 1024, 40, 40, 5120),
    "20B": (50304, 1024, 44, 48, 6144),
    "30B": (50304, 1024, 48, 56, 7168),
}


class Block(nn.Module):
    def __init__(self, d, n_head, n_layer):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)
        with torch.no_grad():
            for lin in (self.c_attn, self.c_fc):
                lin.weight.normal_(0.0, 0.02)
                lin.bias.zero_()
            for lin in (self.attn_proj, self.mlp_proj):
                lin.weight.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))
                lin.bias.zero_()

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.c_attn(self.ln_1(x)).view(b, t, 3, self.n_head, d // self.n_head)
        # unbind, as examples/gpt does: one stack in backward instead of three zero-filled
        # select gradients added together.
        q, k, v = (part.transpose(1, 2) for part in qkv.unbind(2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, seq, n_layer, n_head, d, checkpoint_every=0, loss_chunks=0):
        super().__init__()
        # torch.utils.checkpoint(use_reentrant=False) on every checkpoint_every-th block, and the
        # output layer and loss in loss_chunks checkpointed slices of the tokens, as
        # examples/gpt does with --activation_checkpointing.
        self.checkpoint_every = checkpoint_every
        self.loss_chunks = loss_chunks
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, n_head, n_layer) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        with torch.no_grad():
            self.wte.weight.normal_(0.0, 0.02)
            self.wpe.weight.normal_(0.0, 0.02)

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        for i, block in enumerate(self.blocks):
            if self.checkpoint_every and i % self.checkpoint_every == 0:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        if not self.checkpoint_every or self.loss_chunks <= 1:
            logits = F.linear(self.ln_f(x), self.wte.weight)  # tied output projection
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        x = x.reshape(-1, x.shape[-1])
        y = targets.reshape(-1)
        n = x.shape[0]
        chunk = (n + self.loss_chunks - 1) // self.loss_chunks
        total = 0
        for start in range(0, n, chunk):
            total = total + checkpoint(self._loss_sum, x[start:start + chunk], y[start:start + chunk],
                                       use_reentrant=False)
        return total / n

    def _loss_sum(self, h, y):
        logits = F.linear(self.ln_f(h), self.wte.weight)
        return F.cross_entropy(logits.float(), y, reduction="sum")


def parameter_count(vocab, seq, n_layer, d):
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    return vocab * d + seq * d + n_layer * per_block + 2 * d


def flops_per_token(vocab, seq, n_layer, d):
    return 6.0 * (parameter_count(vocab, seq, n_layer, d) - seq * d) + 12.0 * n_layer * d * seq


def peak_bf16_flops():
    name = torch.cuda.get_device_name()
    if "H100" in name or "H200" in name:
        return 989.4e12
    if "A100" in name:
        return 312e12
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ddp", "fsdp2"], default="ddp")
    ap.add_argument("--model", default="124M", choices=sorted(PRESETS))
    ap.add_argument("--micro_batch", type=int, default=16)
    ap.add_argument("--seq_len", type=int, default=0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup_steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--profile", type=int, default=0, help="after training, profile N more steps (top GPU kernels)")
    ap.add_argument("--checkpoint", type=int, default=0,
                    help="torch.utils.checkpoint(use_reentrant=False) on every k-th block (0: none)")
    ap.add_argument("--loss_chunks", type=int, default=8,
                    help="with --checkpoint: the output layer and loss in this many checkpointed slices")
    args = ap.parse_args()

    vocab, seq, n_layer, n_head, d = PRESETS[args.model]
    seq = args.seq_len or seq
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(args.seed)
    model = GPT(vocab, seq, n_layer, n_head, d, args.checkpoint, args.loss_chunks)
    if args.mode == "ddp":
        model = model.cuda()
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank])
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        model = model.cuda()
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16)
        for block in model.blocks:
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        net = model
        autocast = lambda: torch.autocast("cuda", enabled=False)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)

    gen = torch.Generator().manual_seed(args.seed + 1000003 * rank)
    if rank == 0:
        print(f"gpt peer ({args.mode}): {args.model}, {parameter_count(vocab, seq, n_layer, d) / 1e6:.1f}M parameters, "
              f"micro batch {args.micro_batch}, seq_len {seq}, {world} ranks", flush=True)
    memory = {}

    def train_step(measure=False):
        window = torch.randint(vocab, (args.micro_batch, seq + 1), generator=gen).pin_memory().cuda(non_blocking=True)
        x, y = window[:, :seq], window[:, 1:]
        if measure:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with autocast():
            loss = net(x, y)
        loss.backward()
        if measure:
            # As examples/gpt: the peak above what is allocated once backward is done.
            torch.cuda.synchronize()
            memory["activation"] = torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for step in range(args.steps):
        if step == args.warmup_steps:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        loss = train_step(measure=step + 1 == args.steps)
        if rank == 0 and ((step + 1) % 10 == 0 or step + 1 == args.steps):
            print(f"step {step + 1} loss {loss.item():.4f}", flush=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = (args.steps - args.warmup_steps) * args.micro_batch * seq * world / seconds
    peak = torch.tensor([float(torch.cuda.max_memory_allocated())], device="cuda")
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    peak_flops = peak_bf16_flops()
    mfu = tokens_per_s / world * flops_per_token(vocab, seq, n_layer, d) / peak_flops if peak_flops else 0.0
    if rank == 0:
        print(json.dumps({"implementation": f"pytorch-{args.mode}", "model": args.model,
                          "parameters": parameter_count(vocab, seq, n_layer, d), "world_size": world,
                          "micro_batch": args.micro_batch, "seq_len": seq, "tokens_per_s": tokens_per_s,
                          "mfu": mfu, "peak_memory_gib": peak.item() / 2**30, "final_loss": loss.item(),
                          "activation_checkpointing": args.checkpoint,
                          "activation_memory_gib": memory.get("activation", 0) / 2**30,
                          "torch": torch.__version__}), flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(args.profile):
                train_step()
            torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) * 1e3 / args.profile
        if rank == 0:
            kernels = {}
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    k = kernels.setdefault(e.name[:90], [0.0, 0])
                    k[0] += e.time_range.elapsed_us() / 1e3
                    k[1] += 1
            total = sum(v[0] for v in kernels.values())
            print(f"profile: {args.profile} steps, {wall:.2f} ms wall per step, "
                  f"{total / args.profile:.2f} ms of GPU activity per step")
            for name, (ms, calls) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:30]:
                print(f"  {ms / args.profile:8.3f} ms {calls // args.profile:6d}  {name}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
