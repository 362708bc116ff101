"""Headless editing layer (no Qt): the editing session the CLI and the app drive, documents and
their undo steps, windows and working scale, compositing and colour matching, image files."""
