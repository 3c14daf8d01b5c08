"""Chapter NVAE: a deep hierarchical VAE with groups of latents, residual posteriors and a shared top-down path.

``from dlnotes import nvae`` gives the chapter's API: the Gaussian pieces (:mod:`~dlnotes.nvae.kl`),
spectral and BN penalties (:mod:`~dlnotes.nvae.spectral`), KL warm-up and balancing
(:mod:`~dlnotes.nvae.schedule`), the cells (:mod:`~dlnotes.nvae.cells`), weight normalisation
(:mod:`~dlnotes.nvae.weight_norm`), what each group encodes (:mod:`~dlnotes.nvae.hierarchy`), the two-mode
toy fitted by reverse KL (:mod:`~dlnotes.nvae.toy`), the model (:mod:`~dlnotes.nvae.model`) and its training
(:mod:`~dlnotes.nvae.train`, also ``python -m dlnotes.nvae.train``).
"""
from dlnotes.nvae.cells import DecoderCell, Down, EncoderCell, SqueezeExcite, Up
from dlnotes.nvae.hierarchy import HierarchyProfile, hierarchy_profile, pixel_correlation
from dlnotes.nvae.kl import normal_kl, normal_log_prob, residual_normal_kl, soft_clamp
from dlnotes.nvae.model import NVAE, NVAEConfig, NVAEOutput, NVAESample, latent_count, readjust_bn
from dlnotes.nvae.schedule import balance_coefficients, group_alphas, groups_per_scale, kl_warmup
from dlnotes.nvae.spectral import SpectralRegularizer, bn_penalty, power_iteration
from dlnotes.nvae.toy import (AutoregressiveGaussian, FactorisedGaussian, TwoModeTarget, factorised_kl,
                              fit_reverse_kl, reverse_kl)
from dlnotes.nvae.train import FULL, QUICK, Loss, binarize, loss_terms, lr_at, make_optimizer, train
from dlnotes.nvae.weight_norm import apply_weight_norm, is_weight_normed

__all__ = ["DecoderCell", "Down", "EncoderCell", "SqueezeExcite", "Up",
           "HierarchyProfile", "hierarchy_profile", "pixel_correlation",
           "normal_kl", "normal_log_prob", "residual_normal_kl", "soft_clamp",
           "NVAE", "NVAEConfig", "NVAEOutput", "NVAESample", "latent_count", "readjust_bn",
           "balance_coefficients", "group_alphas", "groups_per_scale", "kl_warmup",
           "SpectralRegularizer", "bn_penalty", "power_iteration",
           "FULL", "QUICK", "Loss", "binarize", "loss_terms", "lr_at", "make_optimizer", "train",
           "apply_weight_norm", "is_weight_normed",
           "AutoregressiveGaussian", "FactorisedGaussian", "TwoModeTarget", "factorised_kl", "fit_reverse_kl",
           "reverse_kl"]
