"""Chapter integrated gradients: attribution by path integrals (Sundararajan et al., 2017; Su, kexue.fm/archives/7533).

``from dlnotes import integrated_gradients as ig`` gives the attribution methods
(:mod:`~dlnotes.integrated_gradients.attribution`: ``ig.integrated_gradients``, ``ig.gradient``, ...);
the chapter's models and the gradient-penalty experiment live in :mod:`dlnotes.integrated_gradients.models`,
rank correlation and deletion/insertion curves in :mod:`~dlnotes.integrated_gradients.evaluation`, the
synthetic text classifier of the miniature sentiment demo in :mod:`~dlnotes.integrated_gradients.text`,
and the chapter's drawing helpers in :mod:`~dlnotes.integrated_gradients.figures`.
"""
from dlnotes.integrated_gradients import models  # noqa: F401  (the chapter's models and experiment)
from dlnotes.integrated_gradients.attribution import *  # noqa: F401,F403  (names in attribution.__all__)
from dlnotes.integrated_gradients.attribution import __all__
