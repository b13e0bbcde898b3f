#!/usr/bin/env python3
"""Reference tensors for fpsim's Llama, computed by PyTorch in float64.

Usage: llama_reference.py DIR

DIR/case.json (written by the Swift test FPEngineTests.LlamaReferenceTests) holds the model config
(vocab_size, block_size, n_layer, n_head, n_embd, hidden, rope_base), the batch (B, T, tokens,
targets, both B*T integers, row-major) and the parameter list [{"name", "shape"}] in storage order;
DIR/params.bin holds those parameters as float32 little-endian, concatenated in that order. The names
are Hugging Face's LlamaForCausalLM state_dict names (model.embed_tokens.weight, model.layers.L.
self_attn.q_proj.weight, ..., model.norm.weight, lm_head.weight: an untied head).

The model is built here from PyTorch primitives, written from the Llama definition (Hugging Face's
modeling_llama, without caches or grouped-query attention): token embedding, no learned positions;
per block x = x + o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h))) with
h = input_layernorm(x), then x = x + down_proj(silu(gate_proj(h)) * up_proj(h)) with
h = post_attention_layernorm(x); RMSNorm(x) = weight * x / sqrt(mean(x^2) + 1e-5); causal softmax
attention with scale 1/sqrt(head size); no biases; final RMSNorm; untied head.

Rotary convention: Hugging Face's rotate_half (GPT-NeoX), the same as fpsim's `Rotary`: in each head
of size d, dimension i pairs with i + d/2; inv_freq_i = base^(-2i/d) for i < d/2; at position t the
angle is t * inv_freq_i, cos and sin are repeated over both halves, and
q_rot = q * cos + rotate_half(q) * sin with rotate_half([x1, x2]) = [-x2, x1].

The weights are loaded as float32 values converted exactly to float64 and the whole forward and
backward runs in float64, so the reference carries no float32 rounding of its own.

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


def rms_norm(x, w, eps=1e-5):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope_tables(T, d, base):
    """cos, sin (T, d): Hugging Face's LlamaRotaryEmbedding in float64."""
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)  # (T, d/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, d)
    return emb.cos(), emb.sin()


def forward(p, cfg, idx):
    """Logits (B,T,V) of the Llama with parameters p (dict name -> tensor) on token ids idx (B,T)."""
    B, T = idx.shape
    C, nh, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hs = C // nh
    cos, sin = rope_tables(T, hs, cfg["rope_base"])
    x = p["model.embed_tokens.weight"][idx]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        pre = f"model.layers.{l}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"])
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, nh, hs).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, nh, hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[pre + "self_attn.o_proj.weight"].T
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"])
        m = F.silu(h @ p[pre + "mlp.gate_proj.weight"].T) * (h @ p[pre + "mlp.up_proj.weight"].T)
        x = x + m @ p[pre + "mlp.down_proj.weight"].T
    x = rms_norm(x, p["model.norm.weight"])
    return x @ p["lm_head.weight"].T  # untied head


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
