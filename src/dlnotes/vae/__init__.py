"""Chapter VAE: the Gaussian KL, reparameterisation, decoder likelihoods, VAE models and
importance-weighted log-likelihood estimates.

Shared: the NVAE chapter builds on this subpackage (``gaussian_kl``, ``reparameterize``,
``importance_log_likelihood`` and the ``log_importance_weights(x, k) -> (k, B)`` protocol).
"""
from dlnotes.vae.importance import ImportanceWeighted, gaussian_log_density, importance_log_likelihood
from dlnotes.vae.kl import KLParts, check_gaussian, gaussian_kl, gaussian_kl_parts, reparameterize
from dlnotes.vae.linear_gaussian import LinearGaussian

__all__ = [
    "ImportanceWeighted", "KLParts", "LinearGaussian", "check_gaussian", "gaussian_kl", "gaussian_kl_parts",
    "gaussian_log_density", "importance_log_likelihood", "reparameterize",
]
