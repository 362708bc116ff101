"""The bundled models and their cards: package data, installed as fractal_studio/models (see pyproject.toml).

No code: this file makes the folder the package `fractal_studio.models`, which model/catalog.py finds
with importlib.resources in a wheel and in an editable install alike.
"""
