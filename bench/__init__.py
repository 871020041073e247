"""RIBench: robustness and interpretability benchmark suite for image classifiers."""

__version__ = "0.1.0"
