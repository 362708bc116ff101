"""Headless editing layer: documents, windows, compositing, image files (no Qt)."""
