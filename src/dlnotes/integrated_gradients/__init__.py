"""Chapter integrated gradients: attribution by path integrals (Sundararajan et al., 2017; Su, kexue.fm/archives/7533).

``from dlnotes import integrated_gradients as ig`` gives the attribution methods
(:mod:`~dlnotes.integrated_gradients.attribution`: ``ig.integrated_gradients``, ``ig.gradient``, ...);
the chapter's models and the gradient-penalty experiment live in :mod:`dlnotes.integrated_gradients.models`.
"""
from dlnotes.integrated_gradients import models  # noqa: F401  (the chapter's models and experiment)
from dlnotes.integrated_gradients.attribution import *  # noqa: F401,F403  (names in attribution.__all__)
from dlnotes.integrated_gradients.attribution import __all__
