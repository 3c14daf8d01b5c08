"""Chapter "initialisation, parameterisation and normalisation of Transformers" (after Su Jianlin).

``from dlnotes import init_norm`` gives the chapter's API:

- :mod:`~dlnotes.init_norm.sampling`: matched uniform, truncated normal in TensorFlow and PyTorch
  semantics and the factor γ(a), LeCun / He / Xavier / orthogonal rules (``init_linear_``);
- :mod:`~dlnotes.init_norm.activations`: second moments and gains of activations by quadrature,
  ``RescaledActivation``, ``selu_constants``;
- :mod:`~dlnotes.init_norm.attention`: the teaching ``attention`` (equal to
  ``scaled_dot_product_attention``) and softmax statistics against the logit scale;
- :mod:`~dlnotes.init_norm.norms`: ``RMSNorm``;
- :mod:`~dlnotes.init_norm.deepnorm`: ``deepnorm_constants``, ``admin_omega``;
- :mod:`~dlnotes.init_norm.blocks`: ``TransformerBlock`` (residual forms post / pre / deepnorm / rezero /
  ramp / pre-ramp / none; standard / NTK / μP parameterisations; ``from_torch``) and ``TransformerStack``;
- :mod:`~dlnotes.init_norm.propagation`: signal propagation at init (the norm's drift through square
  random layers, ``log_norm_drift``; deep MLPs, linear residual toys, Transformer stacks);
- :mod:`~dlnotes.init_norm.adam_step`: one Adam step against width in the NTK and standard
  parameterisations (``first_adam_step``);
- :mod:`~dlnotes.init_norm.coord_check`: μP for an MLP under Adam, the coordinate check and the
  learning-rate sweep over widths (``lr_sweep``);
- :mod:`~dlnotes.init_norm.markov`: ``MarkovLanguage``, a synthetic second-order Markov language (no
  download) with its entropy rate;
- :mod:`~dlnotes.init_norm.mup_lm`: ``TransformerLM`` in SP or μP, its Adam groups and the learning-rate
  sweep over widths (``lm_lr_sweep``);
- :mod:`~dlnotes.init_norm.sorting`: the sorting experiment (with the attention scales sqrt / unscaled /
  T5 init, ``build_stack``), its budgets and the swap test;
- :mod:`~dlnotes.init_norm.figures`: the chapter's plotly figures.
"""
from dlnotes.init_norm.activations import (ACTIVATIONS, RescaledActivation, activation_fn, first_moment, gain,
                                           layer_factor, second_moment, selu_constants)
from dlnotes.init_norm.attention import (SCALE_MODES, attention, attention_row_stats, logit_scale,
                                         retrieval_losses, softmax_jacobian_norm)
from dlnotes.init_norm.blocks import NORMS, PARAMS, ParamLinear, TransformerBlock, TransformerStack
from dlnotes.init_norm.adam_step import ADAM_SETUPS, first_adam_step
from dlnotes.init_norm.coord_check import MLP, coord_check, lr_sweep, mup_param_groups
from dlnotes.init_norm.deepnorm import admin_omega, deepnorm_constants
from dlnotes.init_norm.markov import MarkovLanguage
from dlnotes.init_norm.mup_lm import TransformerLM, lm_batches, lm_lr_sweep, train_lm
from dlnotes.init_norm.norms import RMSNorm, rms_norm
from dlnotes.init_norm.propagation import (attention_peaks, log_norm_drift, mlp_moments, post_norm_toy,
                                           pre_norm_toy, row_cosine, sorting_batch, stack_profile)
from dlnotes.init_norm.sampling import (RULES, fans, init_linear_, rule_std, trunc_normal_tf, trunc_normal_torch,
                                        truncation_factor, uniform_matched)
from dlnotes.init_norm.sorting import (ATTENTION_MODES, FULL, QUICK, SWAP_MODES, RunResult, SortConfig,
                                      build_stack, swap_test, train_sorting)

__all__ = [
    "ACTIVATIONS", "RescaledActivation", "activation_fn", "first_moment", "gain", "layer_factor", "second_moment",
    "selu_constants",
    "SCALE_MODES", "attention", "attention_row_stats", "logit_scale", "retrieval_losses",
    "softmax_jacobian_norm",
    "NORMS", "PARAMS", "ParamLinear", "TransformerBlock", "TransformerStack",
    "ADAM_SETUPS", "first_adam_step",
    "MLP", "coord_check", "lr_sweep", "mup_param_groups", "admin_omega", "deepnorm_constants", "RMSNorm", "rms_norm",
    "attention_peaks", "log_norm_drift", "mlp_moments", "post_norm_toy", "pre_norm_toy", "row_cosine",
    "sorting_batch", "stack_profile",
    "RULES", "fans", "init_linear_", "rule_std", "trunc_normal_tf", "trunc_normal_torch", "truncation_factor",
    "uniform_matched", "ATTENTION_MODES", "FULL", "QUICK", "RunResult", "SortConfig", "build_stack",
    "swap_test", "SWAP_MODES",
    "train_sorting", "MarkovLanguage", "TransformerLM", "lm_batches", "lm_lr_sweep", "train_lm",
]
