"""The package version (a leaf module: ``bench.provenance`` records it without importing the package's API)."""

__version__ = "0.1.0"
