"""Interpretability measurements shared by the interpretability plugins.

cams: CAMs by name (native Top-GAP CAM, pytorch-grad-cam methods, Recipro-CAM); localization: IoU / PxAP
against object masks; erf: effective-receptive-field gradient maps (Def. 6) (the region-confined attacks of
Def. 7 are bench.attacks with a pixel mask); removal: deletion / insertion curves with zero, mean, blur or ROAD removal.
"""

from bench.interp.cams import CAM_METHODS, compute_cams, resolve_method, target_layer
from bench.interp.recipro_cam import recipro_cam

__all__ = ["CAM_METHODS", "compute_cams", "recipro_cam", "resolve_method", "target_layer"]
