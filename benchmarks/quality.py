"""Quality of the trained models (run on demand, not in the test suite).

    .venv/bin/python benchmarks/quality.py class   --model models/fashion_mnist.safetensors
    .venv/bin/python benchmarks/quality.py inpaint --model models/photo_64.safetensors
    .venv/bin/python benchmarks/quality.py grid    --model models/fashion_mnist.safetensors --out assets/x.png

class: held-out bits/dim on the Fashion-MNIST test split; then a small CNN classifier is trained on
  the Fashion-MNIST training split (its test accuracy is printed) and class-conditional samples
  (cfg 3 by default) are classified: the share classified as the class they were asked for, per
  class and overall.
inpaint: on crops of the 4 held-out photos with random brush-stroke masks covering 5-20% of the
  64x64 window, our model (its first sample, and the best of 4 samples by PSNR, an oracle choice)
  against OpenCV's cv2.inpaint (INPAINT_TELEA, INPAINT_NS): PSNR and SSIM over the masked pixels.
  Also the held-out bits/dim of the photo model and a picture of six cases (--grid).
grid: a sample grid for a model card (one row per class, or rows of unconditional samples).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fractal_studio.model.weights import load_model
from fractal_studio.sampling import SampleRequest, sample_all
from fractal_studio.training.loop import PHOTO_SCALES, heldout_bits_per_dim

SPREAD_HELP = "central share of each pixel's distribution sampled from (default: the model's)"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ metrics
def psnr_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the pixels where `mask` is True, all three channels."""
    diff = a.astype(np.float64)[mask] - b.astype(np.float64)[mask]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """SSIM (Wang et al. 2004) per pixel, Gaussian window (11x11, sigma 1.5), mean over channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)

        def blur(z):
            return cv2.GaussianBlur(z, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        out.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(out, axis=0)


def ssim_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the SSIM map over the masked pixels (the windows reach a few pixels around them)."""
    return float(ssim_map(a, b)[mask].mean())


# ------------------------------------------------------------------------------------ class model
class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, 128), nn.ReLU(),
                                  nn.Linear(128, classes))

    def forward(self, images_u8: torch.Tensor) -> torch.Tensor:  # uint8 [N, 3, 32, 32]
        x = images_u8.float().mean(1, keepdim=True) / 255.0
        return self.head(self.features(x))


def train_classifier(epochs: int, cache: Path | None, seed: int = 0) -> tuple[SmallCNN, float]:
    from fractal_studio.training.data import fashion_mnist

    net = SmallCNN()
    test_x, test_y = fashion_mnist("test")
    if cache is not None and cache.is_file():
        net.load_state_dict(torch.load(cache))
        log(f"classifier loaded from {cache}")
    else:
        train_x, train_y = fashion_mnist("train")
        torch.manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        start = time.perf_counter()
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(train_y))
            for i in range(0, len(order), 128):
                idx = order[i:i + 128]
                x = train_x[idx]
                if torch.rand(()) < 0.5:
                    x = x.flip(-1)
                loss = F.cross_entropy(net(x), train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            log(f"classifier epoch {epoch + 1}/{epochs} done ({time.perf_counter() - start:.0f}s)")
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), cache)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(test_x[i:i + 500]).argmax(1) for i in range(0, len(test_y), 500)])
    return net, float((pred == test_y).float().mean())


def class_benchmark(args) -> dict:
    from fractal_studio.training.data import fashion_mnist

    model = load_model(args.model).eval()
    config = model.config
    test_x, test_y = fashion_mnist("test")
    n = min(args.heldout, len(test_y))
    start = time.perf_counter()
    bpd = None
    if n > 0:
        bpd = heldout_bits_per_dim(model, test_x[:n], test_y[:n], torch.device("cpu"), batch=100)
        log(f"held-out bits/dim on the first {n} test images: {bpd:.4f} ({time.perf_counter() - start:.0f}s)")

    cache = args.classifier_cache or f"/tmp/fractal_studio_fmnist_cnn_{args.classifier_epochs}ep.pt"
    net, accuracy = train_classifier(args.classifier_epochs, Path(cache))
    log(f"classifier test accuracy: {accuracy:.4f}")

    spread = config.sampling.spread if args.spread is None else args.spread
    per_class, confusion = {}, {}
    start = time.perf_counter()
    for class_id in range(config.class_num):
        request = SampleRequest.generate(config.resolution, class_id=class_id, cfg=args.cfg,
                                         temperature=args.temperature, candidates=args.per_class,
                                         seed=1000 + class_id, spread=spread)
        finished = sample_all(model, request)
        images = torch.from_numpy(np.stack(finished.candidates)).permute(0, 3, 1, 2)
        with torch.no_grad():
            pred = net(images).argmax(1)
        per_class[config.class_name(class_id)] = float((pred == class_id).float().mean())
        confusion[config.class_name(class_id)] = {config.class_name(int(k)): int(v) for k, v in
                                                  zip(*torch.unique(pred, return_counts=True), strict=True)}
        log(f"  {config.class_name(class_id)}: {per_class[config.class_name(class_id)]:.2f} "
            f"(classified as {confusion[config.class_name(class_id)]}; {time.perf_counter() - start:.0f}s)")
    overall = float(np.mean(list(per_class.values())))
    log(f"samples classified as the requested class: {overall:.3f} overall (cfg {args.cfg}, temperature "
        f"{args.temperature}, {args.per_class} per class)")
    return {"model": args.model, "heldout_bpd": bpd, "heldout_images": n, "classifier_accuracy": accuracy,
            "cfg": args.cfg, "temperature": args.temperature, "spread": spread,
            "samples_per_class": args.per_class,
            "per_class": per_class, "overall": overall, "confusion": confusion}


# ------------------------------------------------------------------------------------ inpainting
def brush_mask(rng: np.random.Generator, size: int = 64, low: float = 0.05,
               high: float = 0.20) -> np.ndarray:
    """Random brush strokes (thick polylines) covering between `low` and `high` of the window."""
    target = rng.uniform(low, high)
    while True:
        mask = np.zeros((size, size), np.uint8)
        while mask.mean() < target:
            points = [rng.uniform(0, size, 2)]
            for _ in range(int(rng.integers(2, 6))):
                angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(6, 18)
                points.append(points[-1] + length * np.array([np.cos(angle), np.sin(angle)]))
            pts = np.clip(np.array(points), 0, size - 1).round().astype(np.int32)
            cv2.polylines(mask, [pts], False, 1, thickness=int(rng.integers(3, 8)))
        if low <= mask.mean() <= high:
            return mask.astype(bool)


def box_mask(rng: np.random.Generator, size: int = 64, low: float = 0.06, high: float = 0.25) -> np.ndarray:
    """An axis-aligned box covering between `low` and `high` of the window, away from its border."""
    area = rng.uniform(low, high) * size * size
    aspect = rng.uniform(0.5, 2.0)
    h = int(np.clip(round(np.sqrt(area / aspect)), 2, size - 8))
    w = int(np.clip(round(area / h), 2, size - 8))
    top, left = int(rng.integers(4, size - h - 3)), int(rng.integers(4, size - w - 3))
    mask = np.zeros((size, size), bool)
    mask[top:top + h, left:left + w] = True
    return mask


MASK_SHAPES = {"brush": brush_mask, "box": box_mask}


def inpaint_benchmark(args) -> dict:
    from fractal_studio.editing.ranking import fill_bits
    from fractal_studio.editing.seamless import seamless_fill
    from fractal_studio.geometry import Rect
    from fractal_studio.training.data import heldout_crops, photo_files

    model = load_model(args.model).eval()
    res = model.config.resolution
    files = photo_files("heldout")
    bpd = None
    if args.bpd:
        crops = heldout_crops(files, size=res, scales=PHOTO_SCALES, count=256)
        bpd = heldout_bits_per_dim(model, crops, torch.full((len(crops),), -1), torch.device("cpu"), batch=64)
        log(f"held-out bits/dim ({len(crops)} crops of {len(files)} held-out photos): {bpd:.4f}")

    cases = heldout_crops(files, size=res, scales=PHOTO_SCALES, count=args.cases, seed=args.seed)
    temperature = model.config.sampling.temperature if args.temperature is None else args.temperature
    spread = model.config.sampling.spread if args.spread is None else args.spread
    # ours_1: the sampler's first candidate as it comes; ours_seamless: the same after the editing
    # layer's colour matching at the border (what the app and the CLI give by default).
    methods = ("telea", "ns", "ours_1", "ours_seamless", "ours_ranked", "ours_oracle")
    report, pictures = {}, []
    for shape in args.shapes:
        rng = np.random.default_rng(args.seed)
        scores = {m: {"psnr": [], "ssim": []} for m in methods}
        seconds = []
        for i in range(args.cases):
            image = cases[i].permute(1, 2, 0).numpy().copy()
            mask = MASK_SHAPES[shape](rng, res)
            mask_u8 = mask.astype(np.uint8) * 255
            holed = image.copy()
            holed[mask] = 0
            results = {
                "telea": cv2.inpaint(holed, mask_u8, 3, cv2.INPAINT_TELEA),
                "ns": cv2.inpaint(holed, mask_u8, 3, cv2.INPAINT_NS),
            }
            started = time.process_time()
            request = SampleRequest(canvas=holed, known=~mask, candidates=args.candidates,
                                    temperature=temperature, seed=args.seed * 1000 + i, spread=spread)
            finished = sample_all(model, request)
            seconds.append((time.process_time() - started) / args.candidates)
            ours = list(finished.candidates)
            costs = fill_bits(model, ours, mask, [Rect(0, 0, res, res)], seed=i, orders=4)
            results["ours_1"] = ours[0]
            matched = [seamless_fill(c, holed, mask) for c in ours]
            results["ours_seamless"] = matched[0]
            results["ours_ranked"] = matched[int(np.argmin(costs))]  # the model's choice, as the app shows it
            results["ours_oracle"] = max(matched, key=lambda c: ssim_masked(c, image, mask))  # an upper bound
            for m in methods:
                scores[m]["psnr"].append(psnr_masked(results[m], image, mask))
                scores[m]["ssim"].append(ssim_masked(results[m], image, mask))
            if i in args.grid_cases:
                pictures.append((image, mask, results))
            log(f"{shape} case {i + 1}/{args.cases} ({mask.mean():.0%} masked): "
                + ", ".join(f"{m} {scores[m]['ssim'][-1]:.3f}" for m in methods))
        summary = {m: {"psnr_mean": float(np.mean(scores[m]["psnr"])),
                       "psnr_median": float(np.median(scores[m]["psnr"])),
                       "ssim_mean": float(np.mean(scores[m]["ssim"]))} for m in methods}
        wins = {f"{m}_beats_telea_ssim": float(np.mean([o > t for o, t in zip(
            scores[m]["ssim"], scores["telea"]["ssim"], strict=True)])) for m in ("ours_1", "ours_seamless")}
        report[shape] = {"summary": summary, **wins, "per_case": scores,
                         "cpu_seconds_per_sample": float(np.mean(seconds))}
        log(f"{shape}: " + json.dumps(summary))
    if args.grid and pictures:
        write_comparison(pictures, Path(args.grid))
        log(f"wrote {args.grid}")
    return {"model": args.model, "heldout_bpd": bpd, "cases": args.cases, "candidates": args.candidates,
            "temperature": temperature, "spread": spread, "shapes": report}


# ------------------------------------------------------------------------------------ whole photos
def stroke_mask(rng: np.random.Generator, shape: tuple[int, int], brush: int) -> np.ndarray:
    """One brush stroke as a user paints it on a whole photo: a polyline of 3-5 segments, each
    4-10 brush widths long, drawn `brush` pixels wide, kept away from the photo's border."""
    height, width = shape
    margin = brush * 2
    mask = np.zeros(shape, np.uint8)
    point = np.array([rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)])
    points = [point]
    for _ in range(int(rng.integers(3, 6))):
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(4, 10) * brush
        point = np.clip(points[-1] + length * np.array([np.cos(angle), np.sin(angle)]),
                        (margin, margin), (width - margin, height - margin))
        points.append(point)
    cv2.polylines(mask, [np.array(points).round().astype(np.int32)], False, 1, thickness=brush,
                  lineType=cv2.LINE_8)
    return mask.astype(bool)


def ellipse_mask(rng: np.random.Generator, shape: tuple[int, int], size: float) -> np.ndarray:
    """An object-removal hole: a filled ellipse `size` pixels long, 0.5-1 times as wide, at any angle."""
    height, width = shape
    mask = np.zeros(shape, np.uint8)
    centre = (int(rng.uniform(size, width - size)), int(rng.uniform(size, height - size)))
    axes = (int(size / 2), int(size / 2 * rng.uniform(0.5, 1.0)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def rectangle_mask(rng: np.random.Generator, shape: tuple[int, int], size: float) -> np.ndarray:
    """An object-removal box: `size` pixels wide, 0.5-1 times as high."""
    height, width = shape
    box_w, box_h = int(size), int(size * rng.uniform(0.5, 1.0))
    left, top = int(rng.uniform(size, width - size - box_w)), int(rng.uniform(size, height - size - box_h))
    mask = np.zeros(shape, bool)
    mask[top:top + box_h, left:left + box_w] = True
    return mask


PHOTO_HOLES = ("stroke", "ellipse", "box")


def photo_cases(count: int, seed: int, sizes: list[int], brush: tuple[float, float],
                objects: tuple[float, float]):
    """(kind, photo, mask) for each case: the held-out photos in turn, at each long side of `sizes`,
    with a brush stroke (`brush` pixels wide), an ellipse or a box (`objects` pixels across)."""
    from fractal_studio.training.data import load_rgb, photo_files

    files = photo_files("heldout")
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = np.asarray(load_rgb(files[i % len(files)]))
        side = sizes[i // len(files) % len(sizes)]
        scale = side / max(photo.shape[:2])
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        kind = PHOTO_HOLES[i % len(PHOTO_HOLES)]
        if kind == "stroke":
            mask = stroke_mask(rng, photo.shape[:2], int(round(rng.uniform(*brush))))
        elif kind == "ellipse":
            mask = ellipse_mask(rng, photo.shape[:2], float(rng.uniform(*objects)))
        else:
            mask = rectangle_mask(rng, photo.shape[:2], float(rng.uniform(*objects)))
        yield kind, photo, mask


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))


def hole_scores(fill: np.ndarray, truth: np.ndarray, mask: np.ndarray, context: int = 8) -> dict[str, float]:
    """SSIM and PSNR over the hole (SSIM windows within the hole's box and `context` pixels around
    it), the same after a Gaussian blur of sigma 2 px of both (coarse: colours and shapes, not
    grain), and the texture ratio: the mean Sobel gradient magnitude of the fill over the hole's
    pixels 2 px in from its edge, over the truth's (a blur scores near 0, the photo's grain 1)."""
    ys, xs = np.nonzero(mask)
    top, left = max(0, ys.min() - context), max(0, xs.min() - context)
    rows, cols = slice(top, ys.max() + context + 1), slice(left, xs.max() + context + 1)
    fill, truth, mask = fill[rows, cols], truth[rows, cols], mask[rows, cols]
    blurred_fill = cv2.GaussianBlur(fill.astype(np.float64), (0, 0), 2)
    blurred_truth = cv2.GaussianBlur(truth.astype(np.float64), (0, 0), 2)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if not inner.any():
        inner = mask
    truth_texture = max(float(gradient_magnitude(truth)[inner].mean()), 1e-6)
    return {"psnr": psnr_masked(fill, truth, mask), "ssim": float(ssim_map(fill, truth)[mask].mean()),
            "coarse_psnr": psnr_masked(blurred_fill, blurred_truth, mask),
            "coarse_ssim": float(ssim_map(blurred_fill, blurred_truth)[mask].mean()),
            "texture": float(gradient_magnitude(fill)[inner].mean()) / truth_texture}


def classical_fills(holed: np.ndarray, mask: np.ndarray) -> dict:
    """What a user would pick instead: OpenCV's Telea and Navier-Stokes (radius 3), and the
    patch-based shift-map of opencv-contrib's xphoto where that wheel is installed."""
    mask_u8 = mask.astype(np.uint8) * 255
    fills = {"telea": lambda: cv2.inpaint(holed, mask_u8, 3, cv2.INPAINT_TELEA),
             "ns": lambda: cv2.inpaint(holed, mask_u8, 3, cv2.INPAINT_NS)}
    if hasattr(cv2, "xphoto"):
        def shift_map():
            out = np.zeros_like(holed)
            cv2.xphoto.inpaint(holed, 255 - mask_u8, out, cv2.xphoto.INPAINT_SHIFTMAP)
            return out
        fills["shiftmap"] = shift_map
    return fills


def photo_benchmark(args) -> dict:
    """Holes in whole held-out photos shown at a screen size (brush strokes, object-removal ellipses
    and boxes), filled through the editing layer as the app runs it, against OpenCV on the same
    photo and mask. `ours` is the model's defaults; `ours-detail=S` the coarse-to-fine fill with
    detail spread S; `ours-no-detail` the fill at the coarse scale alone (the earlier default)."""
    from fractal_studio.editing.engine import EditOptions, run_edit

    model = load_model(args.model).eval()
    ours = {"ours": EditOptions()}
    if args.no_detail:
        ours["ours-no-detail"] = EditOptions(detail=False)
    for spread in args.detail_spreads:
        ours[f"ours-detail={spread:g}"] = EditOptions(detail_spread=spread)
    scores, seconds, pictures = {}, {}, []
    cases = photo_cases(args.cases, args.seed, args.sizes, args.brush, args.objects)
    for i, (kind, photo, mask) in enumerate(cases):
        holed = photo.copy()
        holed[mask] = 0
        results = {}
        methods = classical_fills(holed, mask)
        for name, options in ours.items():
            methods[name] = partial(_our_fill, model, run_edit, holed, mask, options, i)
        for name, fill in methods.items():
            started = time.process_time()
            results[name] = fill()
            seconds.setdefault(name, []).append(time.process_time() - started)
            scores.setdefault(name, []).append(hole_scores(results[name], photo, mask))
        if len(pictures) < args.grid_rows:
            pictures.append((photo, mask, results))
        log(f"photo case {i + 1}/{args.cases} ({kind}, {photo.shape[1]}x{photo.shape[0]}, "
            f"{int(mask.sum())} px): " + ", ".join(
                f"{m} {s[-1]['coarse_ssim']:.3f}/{s[-1]['coarse_psnr']:.1f}/{s[-1]['texture']:.2f}"
                for m, s in scores.items()))
    summary = {m: summarise_holes(s, seconds[m]) for m, s in scores.items()}
    log("photo (raw SSIM / PSNR, coarse SSIM / PSNR, median texture ratio, CPU s):")
    for m, row in summary.items():
        log(f"  {m:22s} {row['ssim']:.3f} / {row['psnr']:.2f}   {row['coarse_ssim']:.3f} / "
            f"{row['coarse_psnr']:.2f}   {row['texture_median']:.2f}   {row['cpu_seconds']:.2f}")
    for kind in PHOTO_HOLES:
        picked = [k for k in range(args.cases) if PHOTO_HOLES[k % len(PHOTO_HOLES)] == kind]
        log(f"  {kind}: " + ", ".join(
            f"{m} {np.mean([scores[m][k]['coarse_ssim'] for k in picked]):.3f}/"
            f"{np.median([scores[m][k]['texture'] for k in picked]):.2f}" for m in scores))
    if args.grid and pictures:
        write_photo_comparison(pictures, Path(args.grid), [m for m in ("telea", "ns", *ours) if m in scores])
        log(f"wrote {args.grid}")
    return {"model": args.model, "cases": args.cases, "seed": args.seed, "sizes": args.sizes,
            "brush": args.brush, "objects": args.objects, "summary": summary, "per_case": scores}


def _our_fill(model, run_edit, holed, mask, options, case: int) -> np.ndarray:
    from dataclasses import replace

    *_, result = run_edit(model, holed, mask, replace(options, seed=case))
    return result.candidates[0]


def summarise_holes(scores: list[dict], seconds: list[float]) -> dict[str, float]:
    row = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    row["texture_median"] = float(np.median([s["texture"] for s in scores]))
    row["cpu_seconds"] = float(np.mean(seconds))
    return row


def write_photo_comparison(pictures, path: Path, methods: list[str], crop: int = 200) -> None:
    """One row per case: the photo around the hole, the hole, then each method's fill, all
    cropped to a `crop`-pixel square centred on the hole and shown at 1:1."""
    rows = []
    for photo, mask, results in pictures:
        ys, xs = np.nonzero(mask)
        cy, cx = int(ys.mean()), int(xs.mean())
        top = int(np.clip(cy - crop // 2, 0, max(0, photo.shape[0] - crop)))
        left = int(np.clip(cx - crop // 2, 0, max(0, photo.shape[1] - crop)))
        window = (slice(top, top + crop), slice(left, left + crop))
        shown = photo.copy()
        shown[mask] = (255, 0, 255)
        cells = [photo[window], shown[window]] + [results[m][window] for m in methods]
        pad = np.full((cells[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([x for c in cells for x in (c, pad)], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    labels = {"telea": "OpenCV Telea", "ns": "OpenCV Navier-Stokes", "shiftmap": "OpenCV shift-map",
              "ours": "ours (defaults)", "ours-no-detail": "ours, coarse scale only"}
    names = ["the photo", "the hole", *(labels.get(m, m) for m in methods)]
    header = np.concatenate([_label(crop + 4, name) for name in names], axis=1)
    header = np.pad(header, ((0, 0), (0, width - header.shape[1]), (0, 0)), constant_values=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([header, *rows]), cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------------ outpainting
def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def seam_ratio(result: np.ndarray, seam: int, rows: slice) -> float:
    """Mean brightness jump across the seam (column seam-1 to seam) over the photo's ordinary
    column-to-column change (the mean over all neighbouring columns of the known part)."""
    lum = luminance(result[rows])
    jump = np.abs(lum[:, seam] - lum[:, seam - 1]).mean()
    ordinary = np.abs(np.diff(lum[:, :seam], axis=1)).mean()
    return float(jump / max(ordinary, 1e-6))


def outpaint_benchmark(args) -> dict:
    """Drag the right border out by `--extend` pixels on held-out photos, through the editing layer
    (as the app does it), and compare the new strip with the photo's true continuation."""
    from fractal_studio.editing.engine import EditOptions, run_edit
    from fractal_studio.training.data import load_rgb, photo_files

    model = load_model(args.model).eval()
    files = photo_files("heldout")
    rng = np.random.default_rng(args.seed)
    methods = ("telea", "ns", "ours")
    scores = {m: {"psnr": [], "ssim": [], "seam": []} for m in methods}
    strips, seconds = [], []
    for i in range(args.cases):
        photo = np.asarray(load_rgb(files[i % len(files)]))
        # A view the size of a small photo: the held-out photo downscaled to 192-320 px high.
        height = int(rng.integers(192, 321))
        scale = height / photo.shape[0]
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
        width = min(photo.shape[1], int(rng.integers(256, 385)))
        left = int(rng.integers(0, photo.shape[1] - width + 1))
        truth = photo[:, left:left + width].copy()
        seam = width - args.extend
        canvas = truth.copy()
        canvas[:, seam:] = 0
        mask = np.zeros(truth.shape[:2], bool)
        mask[:, seam:] = True
        mask_u8 = mask.astype(np.uint8) * 255
        results = {"telea": cv2.inpaint(canvas, mask_u8, 3, cv2.INPAINT_TELEA),
                   "ns": cv2.inpaint(canvas, mask_u8, 3, cv2.INPAINT_NS)}
        started = time.process_time()
        options = EditOptions(seed=i, temperature=args.temperature, spread=args.spread,
                              work_scale=args.work_scale, detail=args.detail)
        *_, result = run_edit(model, canvas, mask, options, blank=mask)
        seconds.append(time.process_time() - started)
        results["ours"] = result.candidates[0]
        for m in methods:
            scores[m]["psnr"].append(psnr_masked(results[m], truth, mask))
            scores[m]["ssim"].append(ssim_masked(results[m], truth, mask))
            scores[m]["seam"].append(seam_ratio(results[m], seam, slice(None)))
        log(f"outpaint case {i + 1}/{args.cases} ({width}x{height}, +{args.extend}px, "
            f"{seconds[-1]:.1f} CPU s): " + ", ".join(
                f"{m} SSIM {scores[m]['ssim'][-1]:.3f} seam x{scores[m]['seam'][-1]:.2f}" for m in methods))
        if len(strips) < 4:
            strips.append(np.concatenate([results[m][:, seam - args.extend:] for m in ("ours", "telea")]
                                         + [truth[:, seam - args.extend:]], axis=1))
    summary = {m: {k: float(np.mean(v)) for k, v in scores[m].items()} for m in methods}
    log("outpaint: " + json.dumps(summary))
    if args.grid and strips:
        write_strips(strips, Path(args.grid), args.extend)
        log(f"wrote {args.grid}")
    return {"model": args.model, "cases": args.cases, "extend": args.extend, "summary": summary,
            "per_case": scores, "cpu_seconds_per_edit": float(np.mean(seconds))}


def write_strips(strips: list[np.ndarray], path: Path, extend: int) -> None:
    """Rows of [ours | Telea | the real photo], each the last 2*extend columns (seam in the middle)."""
    height = 160
    rows = []
    for strip in strips:
        scaled = cv2.resize(strip, (round(strip.shape[1] * height / strip.shape[0]), height),
                            interpolation=cv2.INTER_AREA)
        rows.append(scaled)
        rows.append(np.full((4, scaled.shape[1], 3), 255, np.uint8))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    third = width // 3
    labels = [_label(third, name) for name in ("ours", "OpenCV Telea", "the real photo")]
    if width > 3 * third:
        labels.append(np.full((18, width - 3 * third, 3), 255, np.uint8))
    header = np.concatenate(labels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([header, *rows]), cv2.COLOR_RGB2BGR))


def _label(width: int, text: str, height: int = 18) -> np.ndarray:
    bar = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def write_comparison(pictures, path: Path, zoom: int = 3) -> None:
    columns = ("original", "mask", "OpenCV Telea", "OpenCV NS", "ours (1 sample)", "ours (best of 4)")
    rows = []
    for image, mask, results in pictures:
        shown = image.copy()
        shown[mask] = (255, 0, 255)
        cells = [image, shown, results["telea"], results["ns"], results["ours_seamless"],
                 results["ours_oracle"]]
        cells = [cv2.resize(c, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) for c in cells]
        pad = np.full((cells[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([x for c in cells for x in (c, pad)], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    cell_w = pictures[0][0].shape[1] * zoom + 4
    header = np.concatenate([_label(cell_w, name) for name in columns], axis=1)
    grid = np.concatenate([header, *rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------------ sample grids
def grid_command(args) -> dict:
    model = load_model(args.model).eval()
    config = model.config
    res = config.resolution
    rows, names = [], []
    start = time.perf_counter()
    if config.conditional:
        for class_id in range(config.class_num):
            request = SampleRequest.generate(res, class_id=class_id, cfg=args.cfg, candidates=args.per_row,
                                             seed=args.seed + class_id, spread=config.sampling.spread,
                                             temperature=config.sampling.temperature)
            finished = sample_all(model, request)
            rows.append(finished.candidates)
            names.append(config.class_name(class_id))
    else:
        for r in range(args.rows):
            request = SampleRequest.generate(res, cfg=1.0, candidates=args.per_row, seed=args.seed + r,
                                             spread=config.sampling.spread,
                                             temperature=config.sampling.temperature)
            finished = sample_all(model, request)
            rows.append(finished.candidates)
    log(f"sampled {sum(len(r) for r in rows)} images in {time.perf_counter() - start:.0f}s")
    zoom = args.zoom
    label_w = 90 if names else 0
    lines = []
    for r, images in enumerate(rows):
        cells = [cv2.resize(im, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) for im in images]
        pad = np.full((cells[0].shape[0], 2, 3), 255, np.uint8)
        line = np.concatenate([x for c in cells for x in (c, pad)], axis=1)
        if names:
            tag = np.full((cells[0].shape[0], label_w, 3), 255, np.uint8)
            cv2.putText(tag, names[r], (3, cells[0].shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                        (0, 0, 0), 1, cv2.LINE_AA)
            line = np.concatenate([tag, line], axis=1)
        lines.append(line)
        lines.append(np.full((2, line.shape[1], 3), 255, np.uint8))
    grid = np.concatenate(lines, axis=0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    log(f"wrote {args.out}")
    return {"out": args.out, "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the results to this JSON file")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("class")
    p.add_argument("--model", default="models/fashion_mnist.safetensors")
    p.add_argument("--heldout", type=int, default=1000, help="test images for bits/dim")
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--temperature", type=float, default=1.0, help="logits are divided by it")
    p.add_argument("--spread", type=float, help=SPREAD_HELP)
    p.add_argument("--classifier-epochs", type=int, default=10)
    p.add_argument("--classifier-cache", help="where the trained classifier is kept between runs "
                                              "(default: /tmp/fractal_studio_fmnist_cnn_<epochs>ep.pt)")
    p = sub.add_parser("inpaint")
    p.add_argument("--model", default="models/photo_64.safetensors")
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--temperature", type=float, help="logits are divided by it (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", default="assets/inpaint_comparison.png")
    p.add_argument("--spread", type=float, help=SPREAD_HELP)
    p.add_argument("--shapes", type=lambda v: v.split(","), default=["brush", "box"],
                   help="mask shapes, comma-separated: brush, box")
    p.add_argument("--no-bpd", dest="bpd", action="store_false", help="skip the held-out bits/dim")
    p.add_argument("--grid-cases", type=lambda v: [int(x) for x in v.split(",")],
                   default=[2, 5, 11],
                   help="the cases shown (case i: held-out photo i %% 4 at scale (1, 2, 4, 8)[i // 4 %% 4])")
    p = sub.add_parser("outpaint")
    p.add_argument("--model", default="models/photo_64.safetensors")
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--extend", type=int, default=64, help="pixels added on the right")
    p.add_argument("--temperature", type=float, help="logits are divided by it (default: the model's)")
    p.add_argument("--work-scale", default="auto")
    p.add_argument("--spread", type=float, help=SPREAD_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", default="assets/outpaint_comparison.png")
    p.add_argument("--no-detail", dest="detail", action="store_false",
                   help="fill at the coarse scale only (no coarse to fine)")
    p = sub.add_parser("photo")
    p.add_argument("--model", default="models/photo_64.safetensors")
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[640, 1280],
                   help="the photos' long side in pixels, comma-separated (cases cycle through them)")
    p.add_argument("--brush", type=lambda v: tuple(float(x) for x in v.split(",")), default=(12, 26),
                   help="brush width in pixels: low,high (default 12,26)")
    p.add_argument("--objects", type=lambda v: tuple(float(x) for x in v.split(",")), default=(40, 90),
                   help="object-removal ellipses and boxes, pixels across: low,high (default 40,90)")
    p.add_argument("--no-detail", action="store_true",
                   help="also fill at the coarse scale alone (no coarse to fine: the earlier default)")
    p.add_argument("--detail-spreads", type=lambda v: [float(x) for x in v.split(",")], default=[],
                   help="also coarse to fine with these detail spreads, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", help="write a picture of the first cases here")
    p.add_argument("--grid-rows", type=int, default=4)
    p = sub.add_parser("grid")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--per-row", type=int, default=8)
    p.add_argument("--rows", type=int, default=4, help="rows of an unconditional model")
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--zoom", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"class": class_benchmark, "inpaint": inpaint_benchmark, "outpaint": outpaint_benchmark,
              "photo": photo_benchmark,
              "grid": grid_command}[args.what](args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
