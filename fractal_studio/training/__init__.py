"""Training pipeline: data (`data`, `sources`, `fetch`), the training loop (`loop`), torchrun helpers. No Qt.

`sources` lists the built-in data (photos from Debian wallpaper packages and scikit-image's sample
images, Fashion-MNIST from Debian) and their licences; `fetch` brings it into a cache directory
(default the user cache folder's `data/`, `~/.cache/fractal-studio/data` on Linux, overridable with
the environment variable `FRACTAL_STUDIO_DATA`).
`data` turns them, or a user's image folder, into torch datasets; `loaders` feeds those in a seeded order.
`loop` trains a model (AdamW, warmup + cosine, EMA, checkpoints with exact resume, DistributedDataParallel
under torchrun, with `distributed`) as `options` say; `state` holds what a checkpoint saves beyond
the weights. `fractal-studio train` is its command line.
"""
