"""Chapter capsules: dynamic routing read as soft K-Means (Su 2018, kexue.fm/archives/5112).

``from dlnotes import capsules as cp`` gives the routing itself (:mod:`~dlnotes.capsules.routing`:
``cp.squash``, ``cp.dynamic_routing``, ``cp.CapsuleLayer``, ...); the networks live in
:mod:`dlnotes.capsules.capsnet` and the two-digit experiment in :mod:`dlnotes.capsules.experiment`.
"""
from dlnotes.capsules import capsnet, experiment  # noqa: F401  (submodules of the chapter)
from dlnotes.capsules.routing import *  # noqa: F401,F403  (names listed in routing.__all__)
from dlnotes.capsules.routing import __all__
