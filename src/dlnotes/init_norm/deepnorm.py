"""Constants of DeepNorm (Wang et al. 2022) and Admin (Liu et al. 2020) for deep Post-Norm stacks."""
from __future__ import annotations

import math

__all__ = ["deepnorm_constants", "admin_omega"]


def _layers(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def deepnorm_constants(n_layers: int, *, kind: str = "encoder",
                       n_decoder_layers: int | None = None) -> tuple[float, float] | dict[str, float]:
    """DeepNorm's (α, β): skip multiplier α, init gain β of the FFN, W_v and W_o (not W_q, W_k).

    encoder-only (N = ``n_layers``): α = (2N)^¼, β = (8N)^−¼; decoder-only (M = ``n_layers``):
    α = (2M)^¼, β = (8M)^−¼. ``kind="encoder-decoder"`` with N = ``n_layers`` encoder and
    M = ``n_decoder_layers`` decoder layers returns the paper's four constants as a dict:
    α_enc = 0.81 (N⁴M)^{1/16}, β_enc = 0.87 (N⁴M)^{−1/16}, α_dec = (3M)^¼, β_dec = (12M)^−¼.
    """
    _layers("n_layers", n_layers)
    if kind in ("encoder", "decoder"):
        return (2 * n_layers) ** 0.25, (8 * n_layers) ** -0.25
    if kind == "encoder-decoder":
        if n_decoder_layers is None:
            raise ValueError("n_decoder_layers is required for kind='encoder-decoder'")
        _layers("n_decoder_layers", n_decoder_layers)
        n, m = n_layers, n_decoder_layers
        return {"alpha_encoder": 0.81 * (n ** 4 * m) ** (1 / 16), "beta_encoder": 0.87 * (n ** 4 * m) ** (-1 / 16),
                "alpha_decoder": (3 * m) ** 0.25, "beta_decoder": (12 * m) ** -0.25}
    raise ValueError(f"kind must be 'encoder', 'decoder' or 'encoder-decoder', got {kind!r}")


def admin_omega(n_sublayers: int, *, output_change: str = "log") -> float:
    """Admin's skip weight ω for n residual sublayers: ω² = (n+1)/ln(n+1) − 1 ("log"), n ("constant"), 1 ("linear")."""
    _layers("n_sublayers", n_sublayers)
    if output_change == "log":
        return math.sqrt((n_sublayers + 1) / math.log(n_sublayers + 1) - 1)
    if output_change == "constant":
        return math.sqrt(n_sublayers)
    if output_change == "linear":
        return 1.0
    raise ValueError(f"output_change must be 'log', 'constant' or 'linear', got {output_change!r}")
