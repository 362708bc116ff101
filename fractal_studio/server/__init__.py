"""The HTTP API of `fractal-studio serve`: jobs and the worker (jobs.py), the routes (app.py), a client."""
