"""Encoders and heads: R2Plus1D (video), AudioResNet (audio), Projector, Predictor, CrissCross."""
from .audio import AudioResNet
from .crisscross import CrissCross
from .heads import Predictor, Projector
from .video import R2Plus1D

__all__ = ["AudioResNet", "CrissCross", "Predictor", "Projector", "R2Plus1D"]
