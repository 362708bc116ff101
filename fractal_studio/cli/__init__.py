"""Command-line interface: `fractal-studio [COMMAND] ...`."""
