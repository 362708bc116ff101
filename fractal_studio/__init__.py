"""Fractal Studio: image editing with fractal generative models."""

__version__ = "0.1.0"
