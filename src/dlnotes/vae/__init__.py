"""Chapter VAE: the Gaussian KL, reparameterisation, decoder likelihoods, VAE models, Su's conditional
and clustering VAEs, and importance-weighted log-likelihood estimates.

Shared: the NVAE chapter builds on this subpackage (``gaussian_kl``, ``reparameterize``,
``importance_log_likelihood`` and the ``log_importance_weights(x, k) -> (k, B)`` protocol).

Modules: :mod:`~dlnotes.vae.kl` (E5–E8, E10), :mod:`~dlnotes.vae.likelihoods` (E9),
:mod:`~dlnotes.vae.importance` (E17), :mod:`~dlnotes.vae.linear_gaussian` (a closed-form check),
:mod:`~dlnotes.vae.models`, :mod:`~dlnotes.vae.clustering` (part 四), :mod:`~dlnotes.vae.experiment`
(budgets and training loops).
"""
from dlnotes.vae.clustering import ClusteringVAE, ClusterLoss, hungarian_accuracy, majority_vote_accuracy
from dlnotes.vae.experiment import (FULL, QUICK, Budget, calibrated_claim, encode_all, test_nll, train_clustering,
                                    train_vae)
from dlnotes.vae.importance import ImportanceWeighted, gaussian_log_density, importance_log_likelihood
from dlnotes.vae.kl import KLParts, check_gaussian, gaussian_kl, gaussian_kl_parts, reparameterize
from dlnotes.vae.likelihoods import bernoulli_log_likelihood, binarize, check_binary, gaussian_log_likelihood
from dlnotes.vae.linear_gaussian import LinearGaussian
from dlnotes.vae.models import (LOGVAR_MAX, LOGVAR_MIN, VAE, ConvVAE, MLPVAE, Posterior, SuCVAE, VAELoss,
                                conv_decoder, conv_encoder, image_shape, mlp_decoder, mlp_encoder)

__all__ = [
    "FULL", "LOGVAR_MAX", "LOGVAR_MIN", "QUICK", "VAE", "Budget", "ClusterLoss", "ClusteringVAE", "ConvVAE",
    "ImportanceWeighted", "KLParts", "LinearGaussian", "MLPVAE", "Posterior", "SuCVAE", "VAELoss",
    "bernoulli_log_likelihood", "binarize", "check_binary", "check_gaussian", "conv_decoder", "conv_encoder",
    "calibrated_claim", "encode_all", "gaussian_kl", "gaussian_kl_parts", "gaussian_log_density", "gaussian_log_likelihood",
    "hungarian_accuracy", "image_shape", "importance_log_likelihood", "majority_vote_accuracy", "mlp_decoder", "mlp_encoder",
    "reparameterize", "test_nll", "train_clustering", "train_vae",
]
