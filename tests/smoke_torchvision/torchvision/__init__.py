"""TEST FAKE of torchvision for the capped full-budget smoke run (see ../README.md). Random data, not a data set."""
from torchvision import datasets  # noqa: F401

__version__ = "0.0.0+smoke-fake"
