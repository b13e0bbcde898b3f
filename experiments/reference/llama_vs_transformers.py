#!/usr/bin/env python3
"""Checks llama_reference.py against Hugging Face's own LlamaForCausalLM (a one-off check of the
reference, not run in CI: it needs `pip install transformers`, which fpsim does not otherwise use).

Usage: llama_vs_transformers.py

Builds a small LlamaForCausalLM (vocab 11, width 32, 2 layers, 2 heads, MLP 48, context 8, RMSNorm eps
1e-5, rope_theta 10000, no biases, untied head) in float64 with random weights larger than an
initialization would give, runs the same weights through llama_reference.forward, and prints the
largest difference of the logits and of every parameter gradient of the mean cross-entropy. Exits 1 when
any relative difference exceeds 1e-12 (both run in float64: they should agree to rounding).

Hugging Face computes three things in float32 whatever the model's dtype: RMSNorm (it casts its input
to float32), the rotary tables (inv_freq, the angles, cos and sin) and the attention softmax. Unpatched,
they limit the agreement to about 2e-6 (`--unpatched` shows it). By default the three are patched to run
in the model's dtype, Hugging Face's formulas otherwise unchanged, so that the comparison is float64
against float64.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference  # noqa: E402

try:
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama import modeling_llama
except ImportError:
    sys.exit("transformers is not installed: pip install transformers")


def rms_norm_in_input_dtype(self, hidden_states):
    """LlamaRMSNorm.forward without its cast to float32."""
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def rotary_in_input_dtype(self, x, position_ids):
    """LlamaRotaryEmbedding.forward (default rope) with inv_freq and the angles in x's dtype."""
    d = self.inv_freq.shape[0] * 2
    base = self.config.rope_parameters["rope_theta"] if getattr(self.config, "rope_parameters", None) else self.config.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=x.dtype) / d))
    freqs = position_ids[..., None].to(x.dtype) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def eager_attention_in_input_dtype(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """modeling_llama.eager_attention_forward with its softmax in the query's dtype (not float32)."""
    key_states = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value_states = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = torch.nn.functional.softmax(attn_weights, dim=-1)
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def main():
    V, C, L, NH, H, T, B = 11, 32, 2, 2, 48, 8, 2
    patched = "--unpatched" not in sys.argv[1:]
    if patched:
        modeling_llama.LlamaRMSNorm.forward = rms_norm_in_input_dtype
        modeling_llama.LlamaRotaryEmbedding.forward = rotary_in_input_dtype
        modeling_llama.eager_attention_forward = eager_attention_in_input_dtype
    config = LlamaConfig(
        vocab_size=V, hidden_size=C, intermediate_size=H, num_hidden_layers=L, num_attention_heads=NH,
        num_key_value_heads=NH, max_position_embeddings=T, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False, hidden_act="silu",
        attention_dropout=0.0)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.8 if "embed" in name else 0.35)
            else:
                p.normal_(1, 0.2)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)

    logits_hf = model(input_ids=idx).logits
    loss_hf = F.cross_entropy(logits_hf.view(-1, V), targets.view(-1))
    loss_hf.backward()

    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    cfg = {"n_embd": C, "n_head": NH, "n_layer": L, "rope_base": 10000.0}
    logits_ref = llama_reference.forward(params, cfg, idx)
    loss_ref = F.cross_entropy(logits_ref.view(-1, V), targets.view(-1))
    loss_ref.backward()

    worst = 0.0
    d = (logits_hf - logits_ref).abs().max().item() / logits_ref.abs().max().item()
    print(f"{'logits':48s} relative max diff {d:.2e}")
    worst = max(worst, d)
    for n, p in model.named_parameters():
        d = (p.grad - params[n].grad).abs().max().item() / params[n].grad.abs().max().item()
        worst = max(worst, d)
        print(f"{n:48s} relative max diff {d:.2e}")
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}: loss {loss_hf.item():.12f} "
          f"vs reference {loss_ref.item():.12f}; worst relative difference {worst:.2e}")
    print("Hugging Face's float32 RMSNorm, rotary tables and softmax " + ("patched to float64" if patched else "left in float32"))
    sys.exit(0 if worst <= (1e-12 if patched else 1e-5) else 1)


if __name__ == "__main__":
    main()
