#!/usr/bin/env python3
"""Training-step speed of gpt-tiny in PyTorch (CPU, float32): the peer of `fpsim bench train`.

Usage: pytorch_gpt_tiny.py [--data DIR] [--threads T] [--steps N] [--warmup W] [--seed S]
                           [--attention sdpa|manual]

The model is nanoGPT's GPT at fpsim's gpt-tiny size, written here from PyTorch primitives: learned
token and position embeddings, n_layer pre-LayerNorm blocks (causal multi-head self-attention with one
fused qkv projection, then an MLP of width 4C with exact-erf GELU), a final LayerNorm and a head tied to
the token embedding; biases everywhere except the head, no dropout. Sizes: n_layer 4, n_head 4,
n_embd 128, block_size 128, batch 16, vocabulary = the distinct bytes of DIR/shakespeare.txt.
Initialization as nanoGPT: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)), zero biases.

A step, as nanoGPT's train.py does it and as fpsim times it: draw a batch of random windows from the
first 90% of the text, forward, cross-entropy, backward, clip the global gradient norm to 1.0, AdamW
(betas 0.9, 0.95, weight decay 0.1 on matrices and embeddings only, lr 1e-3), zero the gradients.
--attention sdpa (default) is nanoGPT's path (F.scaled_dot_product_attention, is_causal); manual is its
fallback (explicit masked softmax), which does the same arithmetic as fpsim's kernels.

Prints one JSON object: ms_per_step (median over the timed steps), tokens_per_second (B*T / median),
ms_per_step_min, cpu_ms_per_step (mean CPU time of a step, all threads), peak_rss_bytes, threads, steps, warmup, attention, torch version.
Exit status 3 (with the install command on stderr) when torch cannot be imported.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write(
        'PyTorch is not installed: install the CPU wheel with  pip install "$PIP_FIND_LINKS"/torch-*.whl\n')
    sys.exit(3)

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 128, 16


class SelfAttention(nn.Module):
    def __init__(self, manual):
        super().__init__()
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD)
        self.manual = manual
        if manual:
            self.register_buffer("mask", torch.tril(torch.ones(BLOCK, BLOCK, dtype=torch.bool)))

    def forward(self, x):  # x (B, T, C)
        B, T, C = x.shape
        hs = C // N_HEAD
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, N_HEAD, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if self.manual:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(N_EMBD, 4 * N_EMBD)
        self.c_proj = nn.Linear(4 * N_EMBD, N_EMBD)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, manual):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD)
        self.attn = SelfAttention(manual)
        self.ln_2 = nn.LayerNorm(N_EMBD)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, manual):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(BLOCK, N_EMBD)
        self.h = nn.ModuleList(Block(manual) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.h:  # residual projections
            nn.init.normal_(b.attn.c_proj.weight, 0.0, 0.02 / math.sqrt(2 * N_LAYER))
            nn.init.normal_(b.mlp.c_proj.weight, 0.0, 0.02 / math.sqrt(2 * N_LAYER))

    def forward(self, idx, targets):  # idx, targets (B, T) int64
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attention", choices=["sdpa", "manual"], default="sdpa")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        sys.exit("--steps and --threads must be at least 1, --warmup 0 or more")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)
    torch.manual_seed(a.seed)

    text = open(os.path.join(a.data, "shakespeare.txt"), "rb").read()
    vocab = sorted(set(text))
    lookup = {b: i for i, b in enumerate(vocab)}
    tokens = torch.tensor([lookup[b] for b in text], dtype=torch.long)
    train = tokens[: int(len(tokens) * 0.9)]

    model = GPT(len(vocab), a.attention == "manual")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.95))

    def step():
        ix = torch.randint(len(train) - BLOCK, (BATCH,))
        x = torch.stack([train[i : i + BLOCK] for i in ix])
        y = torch.stack([train[i + 1 : i + 1 + BLOCK] for i in ix])
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    times = []
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / a.steps
    med = statistics.median(times)
    print(json.dumps({
        "model": "gpt-tiny", "framework": f"pytorch {torch.__version__} cpu float32 eager",
        "attention": a.attention, "seed": a.seed, "warmup": a.warmup, "steps": a.steps, "threads": a.threads,
        "items_per_step": BATCH * BLOCK, "vocab_size": len(vocab),
        "ms_per_step": round(med * 1e3, 3), "ms_per_step_min": round(min(times) * 1e3, 3),
        "cpu_ms_per_step": round(cpu * 1e3, 3),
        "tokens_per_second": round(BATCH * BLOCK / med, 3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
