"""Fully Convolutional Networks for polyp segmentation: the package behind the fcn-tutorial book."""

__version__ = "0.1.0"
