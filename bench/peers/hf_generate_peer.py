#!/usr/bin/env python3
"""The peer of bench/inference/inference_bench.cpp: Hugging Face transformers' GPT2LMHeadModel
with the GPT example's sizes (vocab 50304, 1024 positions, GELU tanh, tied output layer),
random weights, bf16 on one GPU, greedy `generate` of --new tokens after a --prompt-token prompt
at each batch size: time to first token, decode tokens/s and the step against the bandwidth
limit computed as the C++ bench does. Modes: eager, and compiled (a static KV cache and
torch.compile of the forward, as transformers recommends for compiled generation).
One JSON line per row."""
import argparse
import json
import time

import torch
import transformers

SIZES = {  # layers, heads, d_model (examples/gpt/gpt_model.cpp's presets)
    "124M": (12, 12, 768), "350M": (24, 16, 1024), "774M": (36, 20, 1280), "1.3B": (24, 16, 2048),
    "2.7B": (32, 32, 2560), "6.7B": (32, 32, 4096),
}


def copy_bandwidth():
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        b.copy_(a)
    torch.cuda.synchronize()
    return 2.0 * a.numel() * 20 / (time.perf_counter() - t)


def generate(model, ids, new, **kw):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                         do_sample=False, pad_token_id=0, **kw)
    torch.cuda.synchronize()
    return time.perf_counter() - t, out.shape[1] - ids.shape[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", default=["1.3B"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--new", type=int, default=256)
    p.add_argument("--modes", nargs="+", default=["eager", "compile"])
    p.add_argument("--compile_batches", nargs="+", type=int, default=None,
                   help="batch sizes for the compiled mode (default: --batch); each one compiles again")
    a = p.parse_args()
    bandwidth = copy_bandwidth()
    for name in a.model:
        layers, heads, d = SIZES[name]
        config = transformers.GPT2Config(vocab_size=50304, n_positions=1024, n_embd=d, n_layer=layers, n_head=heads,
                                         activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0, tie_word_embeddings=True)
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = transformers.GPT2LMHeadModel(config).to(torch.bfloat16).eval()
        weight_bytes = sum(t.numel() * 2 for n, t in model.named_parameters() if "wpe" not in n)
        for mode in a.modes:
            kw = {}
            if mode == "compile":
                # transformers' recipe for compiled generation: a static cache, the forward compiled
                # with CUDA graphs. A model class without static-cache support falls back below.
                model.generation_config.cache_implementation = "static"
                eager_forward = model.forward
                model.forward = torch.compile(eager_forward, mode="reduce-overhead", fullgraph=True)
            batches = a.batch if mode == "eager" or a.compile_batches is None else a.compile_batches
            for batch in batches:
                ids = torch.randint(50304, (batch, a.prompt), device="cuda")
                try:
                    with torch.no_grad():
                        try:
                            generate(model, ids, 8, **kw)  # warm-up (compilation)
                        except Exception as e:  # noqa: BLE001
                            if mode != "compile" or model.generation_config.cache_implementation is None:
                                raise
                            print(json.dumps({"note": f"static cache + fullgraph failed ({str(e)[:200]}); "
                                              "compiling the forward with the dynamic cache"}), flush=True)
                            model.generation_config.cache_implementation = None
                            model.forward = torch.compile(eager_forward, mode="reduce-overhead")
                            generate(model, ids, 8, **kw)
                        generate(model, ids, 8, **kw)
                        ttft, _ = generate(model, ids, 1, **kw)
                        total, made = generate(model, ids, a.new, **kw)
                except Exception as e:  # noqa: BLE001 - one row says what failed, the others still run
                    print(json.dumps({"implementation": "transformers", "mode": mode, "model": name, "batch": batch,
                                      "error": str(e)[:300]}), flush=True)
                    continue
                step = (total - ttft) / (a.new - 1)
                mean_len = a.prompt + a.new / 2
                kv_bytes = 2 * 2 * layers * batch * d * mean_len
                limit = (weight_bytes + kv_bytes) / bandwidth
                print(json.dumps({"implementation": "transformers", "mode": mode, "model": name, "batch": batch,
                                  "prompt": a.prompt, "new_tokens": made, "ttft_ms": ttft * 1e3,
                                  "step_ms": step * 1e3, "decode_tokens_per_s": batch / step,
                                  "limit_step_ms": limit * 1e3, "pct_of_bandwidth_limit": 100 * limit / step,
                                  "transformers": transformers.__version__, "torch": torch.__version__}),
                      flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
