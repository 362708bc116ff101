"""The desktop app, the only package that imports Qt: views of the editing session that forward
what the user does to it."""
