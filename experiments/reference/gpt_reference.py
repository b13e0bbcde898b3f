#!/usr/bin/env python3
"""Reference tensors for fpsim's GPT, computed by PyTorch in float64.

Usage: gpt_reference.py DIR

DIR/case.json (written by the Swift test FPEngineTests.GPTReferenceTests) holds the model config
(vocab_size, block_size, n_layer, n_head, n_embd), the batch (B, T, tokens, targets, both B*T
integers, row-major) and the parameter list [{"name", "shape"}] in storage order; DIR/params.bin holds
those parameters as float32 little-endian, concatenated in that order. The names are nanoGPT's
state_dict names (lm_head.weight is tied to transformer.wte.weight).

The model is built here from PyTorch primitives (GPT-2 architecture as nanoGPT defines it: learned
positions, pre-LayerNorm blocks, causal multi-head attention with a fused qkv projection, exact-erf GELU
MLP of width 4C, final LayerNorm, tied head, biases, no dropout), loaded with those float32 weights
converted exactly to float64, and run forward and backward in float64 so that the reference carries no
float32 rounding of its own.

Writes DIR/reference.bin: float64 little-endian, logits (B*T*V), the mean cross-entropy loss (1 value),
then the gradient of the loss for every parameter in the order of case.json.
Exit status 3 (with the install command on stderr) when torch cannot be imported.
"""
import json
import math
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write(
        'PyTorch is not installed: install the CPU wheel with  pip install "$PIP_FIND_LINKS"/torch-*.whl\n')
    sys.exit(3)


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps=1e-5)


def forward(p, cfg, idx):
    """Logits (B,T,V) of the GPT with parameters p (dict name -> tensor) on token ids idx (B,T)."""
    B, T = idx.shape
    C, nh, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hs = C // nh
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = f"transformer.h.{l}."
        a = layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        qkv = a @ p[h + "attn.c_attn.weight"].T + p[h + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)
        v = v.view(B, T, nh, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[h + "attn.c_proj.weight"].T + p[h + "attn.c_proj.bias"]
        m = layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"])
        m = F.gelu(m @ p[h + "mlp.c_fc.weight"].T + p[h + "mlp.c_fc.bias"])  # exact (erf) GELU
        x = x + m @ p[h + "mlp.c_proj.weight"].T + p[h + "mlp.c_proj.bias"]
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return x @ p["transformer.wte.weight"].T  # tied head


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    with open(os.path.join(d, "case.json")) as f:
        case = json.load(f)
    cfg = case["config"]
    raw = open(os.path.join(d, "params.bin"), "rb").read()
    params, offset = {}, 0
    for spec in case["params"]:
        n = math.prod(spec["shape"])
        values = struct.unpack_from(f"<{n}f", raw, offset)
        offset += 4 * n
        params[spec["name"]] = torch.tensor(values, dtype=torch.float64).view(*spec["shape"]).requires_grad_(True)
    if offset != len(raw):
        sys.exit(f"params.bin has {len(raw)} bytes, the parameter list needs {offset}")
    B, T = case["B"], case["T"]
    idx = torch.tensor(case["tokens"], dtype=torch.long).view(B, T)
    targets = torch.tensor(case["targets"], dtype=torch.long).view(B, T)
    logits = forward(params, cfg, idx)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
    loss.backward()
    out = [logits.detach().reshape(-1), loss.detach().reshape(1)]
    out += [params[spec["name"]].grad.reshape(-1) for spec in case["params"]]
    flat = torch.cat(out).tolist()
    with open(os.path.join(d, "reference.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(flat)}d", *flat))
    print(f"torch {torch.__version__}: loss {loss.item():.9f}, {len(flat)} values")


if __name__ == "__main__":
    main()
