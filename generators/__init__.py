"""synthguard.generators: real sources, generator families, and the corpus builder."""

from generators.base import FitReport, Generator, Samples
from generators.checkpoint import load_generator, save_generator
from generators.registry import GENERATORS, create, family, names, register

__all__ = [
    "GENERATORS",
    "FitReport",
    "Generator",
    "Samples",
    "create",
    "family",
    "load_generator",
    "names",
    "register",
    "save_generator",
]
