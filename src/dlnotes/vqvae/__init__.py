"""Chapter VQ-VAE: vector quantisation, the convolutional VQ-VAE and its PixelCNN prior.

``from dlnotes import vqvae`` gives the chapter's whole API: ``vqvae.VectorQuantizer`` (module
:mod:`~dlnotes.vqvae.quantizer`), ``vqvae.VQVAE`` and its configs (:mod:`~dlnotes.vqvae.model`) and
``vqvae.PixelCNN`` (:mod:`~dlnotes.vqvae.pixelcnn`).
"""
from dlnotes.vqvae.model import *  # noqa: F401,F403  (names listed in model.__all__)
from dlnotes.vqvae.model import __all__ as _model_all
from dlnotes.vqvae.pixelcnn import PixelCNN, PriorSample, down_shift, right_shift

__all__ = [*_model_all, "PixelCNN", "PriorSample", "down_shift", "right_shift"]
