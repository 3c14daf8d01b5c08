"""Chapter VQ-VAE: vector quantisation, the convolutional VQ-VAE and its PixelCNN prior.

``from dlnotes import vqvae`` gives the chapter's whole API: ``vqvae.VectorQuantizer`` (module
:mod:`~dlnotes.vqvae.quantizer`), ``vqvae.VQVAE`` and its configs (:mod:`~dlnotes.vqvae.model`) and
``vqvae.PixelCNN`` with ``vqvae.MaskedPixelCNN`` and ``vqvae.dependence`` (:mod:`~dlnotes.vqvae.pixelcnn`), and
the experiment's training and evaluation helpers (:mod:`~dlnotes.vqvae.experiment`).
"""
from dlnotes.vqvae.model import *  # noqa: F401,F403  (names listed in model.__all__)
from dlnotes.vqvae.model import __all__ as _model_all
from dlnotes.vqvae.experiment import *  # noqa: F401,F403  (names listed in experiment.__all__)
from dlnotes.vqvae.experiment import __all__ as _experiment_all
from dlnotes.vqvae.pixelcnn import MaskedPixelCNN, PixelCNN, PriorSample, dependence, down_shift, right_shift

__all__ = [*_model_all, *_experiment_all, "PixelCNN", "MaskedPixelCNN", "PriorSample", "dependence",
           "down_shift", "right_shift"]
