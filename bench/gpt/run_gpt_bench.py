"""Runs the GPT benchmark: deepspeed-cpp (build/bin/gpt_train through build/bin/deepspeed)
and its PyTorch peers (bench/peers/gpt_peer.py through torchrun) back to back on the same
GPUs, with the same model, micro batch, sequence length and steps, and prints one markdown
table: tokens/s, MFU (dense bf16 peak), peak GPU memory, and the ratio of ours to the peer
(ZeRO stages 0-2 against DDP, stage 3 against FSDP2).

    python3 bench/gpt/run_gpt_bench.py --model 124M --gpus 1,2 --stages 0,1,2 --peers ddp,fsdp2

Each run's own output goes to --log_dir; the table to stdout (and --out when given).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("[rank") and "]: " in line:  # the deepspeed launcher's prefix
            line = line.split("]: ", 1)[1]
        if line.startswith("{") and "tokens_per_s" in line:
            return json.loads(line)
    return None


def run(cmd, log_path, env=None):
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        log.write(p.stdout)
    result = last_json(p.stdout)
    if p.returncode != 0 or result is None:
        tail = "\n".join(p.stdout.splitlines()[-15:])
        print(f"run failed (exit {p.returncode}): {' '.join(cmd)}\n{tail}", file=sys.stderr, flush=True)
        return None
    # As each run ends, so that a run cut short still shows what finished.
    print(f"done: {os.path.basename(log_path)}: {result['tokens_per_s'] / 1e3:,.1f}k tokens/s, "
          f"MFU {100 * result['mfu']:.1f}%, peak {result['peak_memory_gib']:.1f} GiB", flush=True)
    return result


def ours(args, gpus, stage, port, log_dir):
    config = {
        "train_micro_batch_size_per_gpu": args.micro_batch,
        "gradient_accumulation_steps": 1,
        "steps_per_print": 100000,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": True},
        "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-8,
                                                  "weight_decay": 0.1}},
        "zero_optimization": dict({"stage": stage}, **(json.loads(args.zero_json) if stage == 3 else {}),
                                  **({"offload_optimizer": {"device": "cpu", "pin_memory": True}}
                                     if args.offload_optimizer and stage >= 1 else {})),
        "timers": {"throughput": {"enabled": True, "synchronized": False}},
    }
    fd, path = tempfile.mkstemp(suffix=".json", prefix=f"gpt_stage{stage}_")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    build = args.build
    cmd = [f"{build}/bin/deepspeed", "--num_gpus", str(gpus), "--master_port", str(port), f"{build}/bin/gpt_train",
           "--model", args.model, "--steps", str(args.steps), "--warmup_steps", str(args.warmup_steps),
           "--deepspeed_config", path]
    if args.seq_len:
        cmd += ["--seq_len", str(args.seq_len)]
    offload = "_offload" if args.offload_optimizer and stage >= 1 else ""
    return run(cmd, os.path.join(log_dir, f"ours_{args.model}_{gpus}gpu_stage{stage}{offload}.log"))


def peer(args, gpus, mode, port, log_dir):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus), "--master_port", str(port),
           os.path.join(ROOT, "bench/peers/gpt_peer.py"), "--mode", mode, "--model", args.model, "--micro_batch",
           str(args.micro_batch), "--steps", str(args.steps), "--warmup_steps", str(args.warmup_steps)]
    if args.seq_len:
        cmd += ["--seq_len", str(args.seq_len)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return run(cmd, os.path.join(log_dir, f"peer_{args.model}_{gpus}gpu_{mode}.log"), env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="124M")
    ap.add_argument("--gpus", default="1", help="comma-separated GPU counts")
    ap.add_argument("--stages", default="0", help="comma-separated ZeRO stages of ours")
    ap.add_argument("--zero_json", default="{}", help="more zero_optimization keys for stage 3 runs (JSON object)")
    ap.add_argument("--offload_optimizer", action="store_true",
                    help="ours: offload_optimizer to pinned CPU memory (ZeRO-Offload) at every stage from 1")
    ap.add_argument("--peers", default="ddp", help="comma-separated: ddp, fsdp2")
    ap.add_argument("--micro_batch", type=int, default=16)
    ap.add_argument("--peer_gpus", default="", help="GPU counts at which to run the peers (default: all)")
    ap.add_argument("--seq_len", type=int, default=0)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup_steps", type=int, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--log_dir", default=tempfile.gettempdir())
    ap.add_argument("--out", help="also append the table to this file")
    args = ap.parse_args()
    os.makedirs(args.log_dir, exist_ok=True)

    rows = []
    port = 29600
    for gpus in [int(g) for g in args.gpus.split(",")]:
        peers = {}
        peer_gpus = [int(g) for g in args.peer_gpus.split(",") if g]
        for mode in [p for p in args.peers.split(",") if p and (not peer_gpus or gpus in peer_gpus)]:
            port += 1
            peers[mode] = peer(args, gpus, mode, port, args.log_dir)
        for stage in [int(s) for s in args.stages.split(",") if s != ""]:
            port += 1
            r = ours(args, gpus, stage, port, args.log_dir)
            against = "fsdp2" if stage == 3 else "ddp"
            p = peers.get(against)
            offload = ", offload" if args.offload_optimizer and stage >= 1 else ""
            rows.append((gpus, f"deepspeed-cpp ZeRO-{stage}{offload}", r, f"PyTorch {against.upper()}", p))
        for mode, p in peers.items():
            rows.append((gpus, None, None, f"PyTorch {mode.upper()}", p))

    def fmt(r):
        if r is None:
            return "failed | | "
        return f"{r['tokens_per_s'] / 1e3:,.1f}k | {100 * r['mfu']:.1f}% | {r['peak_memory_gib']:.1f}"

    lines = [f"GPT {args.model}, seq {args.seq_len or 1024}, micro batch {args.micro_batch}/GPU, bf16, "
             f"{args.steps - args.warmup_steps} timed steps after {args.warmup_steps}",
             "",
             "| GPUs | ours | tokens/s | MFU | peak GiB | peer | tokens/s | MFU | peak GiB | ours/peer |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for gpus, name, r, peer_name, p in rows:
        if name is None:
            continue
        ratio = f"{r['tokens_per_s'] / p['tokens_per_s']:.2f}x" if r and p else "-"
        lines.append(f"| {gpus} | {name} | {fmt(r)} | {peer_name} | {fmt(p)} | {ratio} |")
    if not any(name for _, name, _, _, _ in rows):
        for gpus, _, _, peer_name, p in rows:
            lines.append(f"| {gpus} | - | | | | {peer_name} | {fmt(p)} | - |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n\n")
    return 0 if all(r is not None for _, name, r, _, _ in rows if name) else 1


if __name__ == "__main__":
    sys.exit(main())
