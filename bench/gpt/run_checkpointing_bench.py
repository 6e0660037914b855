"""Activation checkpointing on one GPU: build/bin/gpt_train with and without
--activation_checkpointing, and the same model under PyTorch's
torch.utils.checkpoint(use_reentrant=False) per block (bench/peers/gpt_peer.py --checkpoint 1),
back to back: tokens/s, MFU, peak memory and activation memory (the step's peak above what is
allocated once backward is done) at the same micro batch; then the largest micro batch that
fits with and without checkpointing (first guess from the activation memory per sample measured
at that micro batch, then smaller until one fits) and the MFU there.

    python3 bench/gpt/run_checkpointing_bench.py --model 1.3B --micro_batch 16 --log_dir /tmp/ckpt

Each run's output goes to --log_dir; the table to stdout and --log_dir/table.md. --budget_s stops
starting runs after that many seconds (the rows not run say so).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START = time.time()


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and "tokens_per_s" in line:
            return json.loads(line)
    return None


def run(name, cmd, args, env=None, timeout=150):
    if time.time() - START > args.budget_s:
        print(f"skipped (time budget): {name}", flush=True)
        return {"skipped": True}
    path = os.path.join(args.log_dir, name + ".log")
    t0 = time.time()
    with open(path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                               timeout=timeout)
            out, code = p.stdout, p.returncode
        except subprocess.TimeoutExpired as e:
            out, code = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), -1
        log.write(out)
    result = last_json(out)
    if code != 0 or result is None:
        oom = "out of memory" in out.lower() or "CUDA out of memory" in out
        print(f"{name}: {'out of memory' if oom else f'failed (exit {code})'} after {time.time() - t0:.0f} s",
              flush=True)
        return {"oom": oom, "failed": not oom}
    print(f"{name}: {result['tokens_per_s'] / 1e3:,.1f}k tokens/s, MFU {100 * result['mfu']:.1f}%, peak "
          f"{result['peak_memory_gib']:.1f} GiB, activations {result.get('activation_memory_gib', 0):.2f} GiB "
          f"({time.time() - t0:.0f} s)", flush=True)
    with open(os.path.join(args.log_dir, "results.jsonl"), "a") as f:
        f.write(json.dumps(dict(result, run=name)) + "\n")
    return result


PORT = [29700]


def ours(args, micro, every, steps, warmup, extra_config=None, tag=""):
    config = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": 1,
        "steps_per_print": 100000,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": True},
        "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-8,
                                                  "weight_decay": 0.1}},
        "zero_optimization": {"stage": 0},
        "timers": {"throughput": {"enabled": True, "synchronized": False}},
    }
    config.update(extra_config or {})
    name = f"ours_{args.model}_mb{micro}_ckpt{every}{tag}"
    path = os.path.join(args.log_dir, name + ".json")
    with open(path, "w") as f:
        json.dump(config, f)
    cmd = [f"{args.build}/bin/gpt_train", "--model", args.model, "--steps", str(steps), "--warmup_steps", str(warmup),
           "--deepspeed_config", path, "--loss_chunks", str(args.loss_chunks)]
    if every:
        cmd += [f"--activation_checkpointing={every}"]
    PORT[0] += 1
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_SIZE="1", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(PORT[0]))
    return run(name, cmd, args, env)


def peer(args, micro, every, steps, warmup):
    PORT[0] += 1
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(PORT[0]),
           os.path.join(ROOT, "bench/peers/gpt_peer.py"), "--mode", "ddp", "--model", args.model, "--micro_batch",
           str(micro), "--steps", str(steps), "--warmup_steps", str(warmup), "--checkpoint", str(every),
           "--loss_chunks", str(args.loss_chunks)]
    return run(f"peer_{args.model}_mb{micro}_ckpt{every}", cmd, args, dict(os.environ, OMP_NUM_THREADS="1"))


def largest(args, measured, every, capacity_gib):
    """Tries the micro batch the measured activation memory per sample predicts, then 1/8 less
    each time, until one fits."""
    per_sample = measured["activation_memory_gib"] / args.micro_batch
    static = measured["peak_memory_gib"] - measured["activation_memory_gib"]
    tried = []
    if per_sample <= 0:  # no GPU memory statistics (a CPU run)
        return None, None, tried
    guess = int((capacity_gib * 0.96 - static) / per_sample) // 4 * 4
    micro = max(guess, args.micro_batch)
    while micro > args.micro_batch and time.time() - START < args.budget_s:
        r = ours(args, micro, every, args.large_steps, args.large_warmup)
        tried.append((micro, r))
        if "tokens_per_s" in r:
            return micro, r, tried
        micro = (micro - max(4, micro // 8)) // 4 * 4
    return None, None, tried


def cell(r):
    if r is None:
        return "- | - | - | -"
    if "tokens_per_s" not in r:
        return ("out of memory" if r.get("oom") else "skipped" if r.get("skipped") else "failed") + " | | |"
    return (f"{r['tokens_per_s'] / 1e3:,.1f}k | {100 * r['mfu']:.1f}% | {r['peak_memory_gib']:.1f} | "
            f"{r.get('activation_memory_gib', 0):.2f}")


def tried_note(tried):
    return ", ".join(f"{m}: {'fits' if 'tokens_per_s' in t else 'out of memory' if t.get('oom') else 'failed'}"
                     for m, t in tried) or "none"


def interval_rows(args, card, capacity, intervals):
    """Checkpointing every k-th block: less recompute (1/k of the blocks), more activation memory."""
    mb = args.micro_batch
    lines = [f"GPT {args.model}, seq 1024, bf16, one GPU ({card}); loss in {args.loss_chunks} checkpointed slices", "",
             "| run | micro batch | tokens/s | MFU | peak GiB | activation GiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for k in intervals:
        r = ours(args, mb, k, args.steps, args.warmup_steps)
        lines.append(f"| deepspeed-cpp, every {k}-th block checkpointed | {mb} | {cell(r)} |")
        if "activation_memory_gib" in r:
            micro, big, tried = largest(args, r, k, capacity)
            lines.append(f"| deepspeed-cpp, every {k}-th block, largest that fits (tried {tried_note(tried)}) | "
                         f"{micro or '-'} | {cell(big)} |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.log_dir, "table_intervals.md"), "w") as f:
        f.write(text + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="1.3B")
    ap.add_argument("--micro_batch", type=int, default=16)
    ap.add_argument("--loss_chunks", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup_steps", type=int, default=4)
    ap.add_argument("--large_steps", type=int, default=5)
    ap.add_argument("--large_warmup", type=int, default=2)
    ap.add_argument("--budget_s", type=float, default=1e9)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--log_dir", default="/tmp/ckpt_bench")
    ap.add_argument("--intervals", default="",
                    help="comma-separated k: instead of the table above, checkpoint every k-th block at --micro_batch "
                         "and at the largest micro batch that fits, for each k")
    args = ap.parse_args()
    os.makedirs(args.log_dir, exist_ok=True)
    try:
        import torch
        props = torch.cuda.get_device_properties(0)
        capacity, card = props.total_memory / 2**30, props.name
    except Exception:  # no torch or no GPU: assume an 80 GB card
        capacity, card = 79.0, "unknown"
    print(f"card: {card}, {capacity:.1f} GiB", flush=True)

    mb = args.micro_batch
    if args.intervals:
        return interval_rows(args, card, capacity, [int(k) for k in args.intervals.split(",")])
    base = ours(args, mb, 0, args.steps, args.warmup_steps)
    ckpt = ours(args, mb, 1, args.steps, args.warmup_steps)
    peer_ckpt = peer(args, mb, 1, args.steps, args.warmup_steps)
    big_ckpt = big_base = (None, None, [])
    if "activation_memory_gib" in ckpt:
        big_ckpt = largest(args, ckpt, 1, capacity)
    if "activation_memory_gib" in base:
        big_base = largest(args, base, 0, capacity)
    host = ours(args, mb, 1, 6, 3, {"activation_checkpointing": {"cpu_checkpointing": True}}, "_cpu")
    peer_base = peer(args, mb, 0, args.steps, args.warmup_steps)

    lines = [f"GPT {args.model}, seq 1024, bf16, one GPU ({card}); loss in {args.loss_chunks} checkpointed slices "
             f"when checkpointing", "",
             "| run | micro batch | tokens/s | MFU | peak GiB | activation GiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |",
             f"| deepspeed-cpp, no checkpointing | {mb} | {cell(base)} |",
             f"| deepspeed-cpp, every block checkpointed | {mb} | {cell(ckpt)} |",
             f"| PyTorch torch.utils.checkpoint(use_reentrant=False) per block | {mb} | {cell(peer_ckpt)} |",
             f"| PyTorch, no checkpointing | {mb} | {cell(peer_base)} |",
             f"| deepspeed-cpp, every block, cpu_checkpointing | {mb} | {cell(host)} |"]
    for label, (micro, r, tried) in (("no checkpointing", big_base), ("every block checkpointed", big_ckpt)):
        lines.append(f"| deepspeed-cpp, {label}, largest that fits (tried {tried_note(tried)}) | {micro or '-'} | "
                     f"{cell(r)} |")
    if all("tokens_per_s" in r for r in (base, ckpt)):
        lines.append("")
        lines.append(f"checkpointed / not at micro batch {mb}: tokens/s {ckpt['tokens_per_s'] / base['tokens_per_s']:.2f}x, "
                     f"activation memory {base['activation_memory_gib'] / max(ckpt['activation_memory_gib'], 1e-9):.1f}x "
                     "lower")
    if all("tokens_per_s" in r for r in (ckpt, peer_ckpt)):
        lines.append(f"ours / torch.utils.checkpoint at micro batch {mb}: "
                     f"{ckpt['tokens_per_s'] / peer_ckpt['tokens_per_s']:.2f}x tokens/s")
    if "checkpoint_saved_bytes" in host:
        b = host["checkpoint_saved_bytes"]
        lines.append(f"cpu_checkpointing: after a forward the checkpoints held {b['device'] / 2**20:.1f} MiB on the "
                     f"GPU and {b['host'] / 2**20:.1f} MiB in host memory")
    if "checkpoint_saved_bytes" in ckpt:
        b = ckpt["checkpoint_saved_bytes"]
        lines.append(f"without cpu_checkpointing: {b['device'] / 2**20:.1f} MiB on the GPU, {b['host'] / 2**20:.1f} MiB "
                     "on the host")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.log_dir, "table.md"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
