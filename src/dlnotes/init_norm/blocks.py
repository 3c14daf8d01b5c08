"""A Transformer encoder block with every residual form of the chapter, and a stack of them.

Residual forms (``norm``), with F the attention or FFN branch (in-eq-post … in-eq-rezero):

- ``post``: x ← LN(x + F(x)) (original Transformer, BERT);
- ``pre``: x ← x + F(LN(x)), the stack adds a final LN;
- ``deepnorm``: x ← LN(α·x + F(x)), FFN, W_v and W_o initialised Xavier with gain β;
- ``rezero``: x ← x + a·F(x), a learned scalar per branch, 0 at init (ReZero / SkipInit);
- ``ramp``: x ← x + r·F(x) and ``pre-ramp``: x ← x + r·F(LN(x)), with r a buffer raised by a fixed
  step per update (``advance_ramp``) to 1 and then frozen (Su's proposal);
- ``none``: x ← x + F(x).

Parameterisations: ``standard`` (weights drawn at the rule's std), ``ntk`` (weights N(0, gain²), output
multiplied by 1/√fan_in) and ``mup`` (standard init, attention logits scaled by 1/d_head instead of 1/√d_head;
μP's learning rates come from ``mup_param_groups``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.init_norm.deepnorm import deepnorm_constants
from dlnotes.init_norm.sampling import init_linear_

__all__ = ["NORMS", "PARAMS", "ParamLinear", "TransformerBlock", "TransformerStack"]

NORMS = ("post", "pre", "deepnorm", "rezero", "ramp", "pre-ramp", "none")
PARAMS = ("standard", "ntk", "mup")
INITS = ("lecun", "xavier", "torch")


class ParamLinear(nn.Linear):
    """nn.Linear with a parameterisation: ``ntk`` keeps N(0, gain²) weights and multiplies by 1/√fan_in."""

    def __init__(self, fan_in: int, fan_out: int, *, bias: bool = True, param: str = "standard") -> None:
        if param not in PARAMS:
            raise ValueError(f"param must be one of {PARAMS}, got {param!r}")
        super().__init__(fan_in, fan_out, bias=bias)
        self.param = param
        self.multiplier = 1.0 / math.sqrt(fan_in) if param == "ntk" else 1.0

    @torch.no_grad()
    def reset(self, rule: str = "lecun", gain: float = 1.0) -> None:
        """Draw the weight by ``rule`` (``torch`` keeps PyTorch's default) and zero the bias."""
        if rule == "torch":
            super().reset_parameters()
        else:
            init_linear_(self.weight, rule, gain)
            if self.param == "ntk":  # same function at init: store the weight √fan_in times larger
                self.weight.div_(self.multiplier)
        if self.bias is not None and rule != "torch":
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.multiplier == 1.0:
            return F.linear(x, self.weight, self.bias)
        y = F.linear(x, self.weight) * self.multiplier
        return y if self.bias is None else y + self.bias


class TransformerBlock(nn.Module):
    """Multi-head self-attention + GELU FFN with one of the residual forms ``NORMS``.

    x: (B, n, d_model) → (B, n, d_model). ``n_layers`` (the depth of the stack the block sits in)
    sets DeepNorm's α and β. ``attn_scale`` overrides the factor on the logits (default 1/√d_head,
    1/d_head under μP). Dropout is not implemented (the chapter studies initialisation).
    """

    def __init__(self, d_model: int, n_heads: int, *, norm: str = "pre", d_ff: int | None = None,
                 param: str = "standard", init: str = "lecun", n_layers: int = 1,
                 attn_scale: float | None = None, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if not isinstance(n_heads, int) or n_heads < 1 or d_model % n_heads:
            raise ValueError(f"n_heads must be a positive int dividing d_model={d_model}, got {n_heads!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if param not in PARAMS:
            raise ValueError(f"param must be one of {PARAMS}, got {param!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if attn_scale is not None and not attn_scale > 0:
            raise ValueError(f"attn_scale must be positive, got {attn_scale!r}")
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.d_model, self.n_heads, self.norm, self.param, self.init = d_model, n_heads, norm, param, init
        self.d_head = d_model // n_heads
        if attn_scale is None:
            attn_scale = 1.0 / self.d_head if param == "mup" else 1.0 / math.sqrt(self.d_head)
        self.attn_scale = attn_scale
        self.qkv = ParamLinear(d_model, 3 * d_model, param=param)
        self.out = ParamLinear(d_model, d_model, param=param)
        self.ff1 = ParamLinear(d_model, d_ff, param=param)
        self.ff2 = ParamLinear(d_ff, d_model, param=param)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.alpha = deepnorm_constants(n_layers)[0] if norm == "deepnorm" else 1.0
        if norm == "rezero":
            self.gate = nn.Parameter(torch.zeros(2))
        else:
            self.register_buffer("gate", torch.zeros(2) if norm in ("ramp", "pre-ramp") else torch.ones(2))
        self.n_layers = n_layers
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise by ``init`` (LeCun normal by default, biases 0); DeepNorm: Xavier, β on FFN, W_v, W_o."""
        if self.norm == "deepnorm":
            beta = deepnorm_constants(self.n_layers)[1]
            d = self.d_model
            for lin in (self.qkv, self.out, self.ff1, self.ff2):
                lin.reset("xavier", beta)
            # the fused (3d, d) qkv holds three d × d maps: Xavier per map; q and k keep gain 1
            for i, g in enumerate((1.0, 1.0, beta)):
                init_linear_(self.qkv.weight[i * d:(i + 1) * d], "xavier", g)
            if self.param == "ntk":
                self.qkv.weight.div_(self.qkv.multiplier)
            return
        for lin in (self.qkv, self.out, self.ff1, self.ff2):
            lin.reset(self.init)

    @torch.no_grad()
    def advance_ramp(self, step: float) -> None:
        """Raise the ramp gate by ``step`` (capped at 1); only for ``ramp`` / ``pre-ramp``."""
        if self.norm not in ("ramp", "pre-ramp"):
            raise ValueError(f"advance_ramp needs norm 'ramp' or 'pre-ramp', got {self.norm!r}")
        if not step > 0:
            raise ValueError(f"step must be positive, got {step!r}")
        self.gate.add_(step).clamp_(max=1.0)

    def attend(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The attention branch, fused (``scaled_dot_product_attention``); x: (B, n, d) → (B, n, d)."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.attn_scale)
        return self.out(y.transpose(1, 2).reshape(b, n, self.d_model))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff2(F.gelu(self.ff1(x)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        branches = (lambda h: self.attend(h, mask), self.feed_forward)
        for i, (branch, ln) in enumerate(zip(branches, (self.norm1, self.norm2))):
            if self.norm == "post":
                x = ln(x + branch(x))
            elif self.norm == "deepnorm":
                x = ln(self.alpha * x + branch(x))
            elif self.norm in ("pre", "pre-ramp"):
                x = x + self.gate[i] * branch(ln(x))
            else:  # rezero, ramp, none
                x = x + self.gate[i] * branch(x)
        return x

    @classmethod
    @torch.no_grad()
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "TransformerBlock":
        """The block computing what ``layer`` computes (batch_first, GELU, dropout 0): ``norm_first`` → pre."""
        if not layer.self_attn.batch_first:
            raise ValueError("layer must be built with batch_first=True")
        if layer.activation not in (F.gelu,) and not isinstance(layer.activation, nn.GELU):
            raise ValueError(f"layer must use the GELU activation, got {layer.activation!r}")
        if layer.dropout.p != 0 or layer.dropout1.p != 0 or layer.dropout2.p != 0 or layer.self_attn.dropout != 0:
            raise ValueError("layer must have dropout 0")
        d, heads = layer.self_attn.embed_dim, layer.self_attn.num_heads
        block = cls(d, heads, norm="pre" if layer.norm_first else "post", d_ff=layer.linear1.out_features,
                    init="torch", layer_norm_eps=layer.norm1.eps)
        block.qkv.weight.copy_(layer.self_attn.in_proj_weight)
        block.qkv.bias.copy_(layer.self_attn.in_proj_bias)
        pairs = ((block.out, layer.self_attn.out_proj), (block.ff1, layer.linear1), (block.ff2, layer.linear2),
                 (block.norm1, layer.norm1), (block.norm2, layer.norm2))
        for ours, theirs in pairs:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
        return block.to(layer.linear1.weight.device, layer.linear1.weight.dtype)


class TransformerStack(nn.Module):
    """Token + learned position embeddings (N(0, 1)), ``n_layers`` blocks, optional final LN, linear head.

    tokens: (B, n) int → logits (B, n, vocab). The final LN is used for every form that does not end in a
    norm (pre, rezero, ramp, pre-ramp, none). ``forward(tokens, states=True)`` also returns the list of
    residual states x_0 … x_L, each (B, n, d_model).
    """

    def __init__(self, vocab: int, seq_len: int, d_model: int, n_heads: int, n_layers: int, *,
                 norm: str = "pre", param: str = "standard", init: str = "lecun",
                 attn_scale: float | None = None) -> None:
        super().__init__()
        for name, value in (("vocab", vocab), ("seq_len", seq_len), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, d_model))
        nn.init.normal_(self.tok.weight)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, norm=norm, param=param, init=init, n_layers=n_layers,
                             attn_scale=attn_scale) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model) if norm not in ("post", "deepnorm") else nn.Identity()
        self.head = ParamLinear(d_model, vocab, param=param)
        self.head.reset("lecun" if init != "torch" else "torch")
        self.norm = norm

    def advance_ramp(self, step: float) -> None:
        for block in self.blocks:
            block.advance_ramp(step)

    def forward(self, tokens: torch.Tensor, *, states: bool = False):
        x = self.tok(tokens) + self.pos[: tokens.shape[1]]
        xs = [x]
        for block in self.blocks:
            x = block(x)
            xs.append(x)
        logits = self.head(self.final_norm(x))
        return (logits, xs) if states else logits
