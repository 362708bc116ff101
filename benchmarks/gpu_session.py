"""What a session lent a GPU runs first: CUDA correctness, speed at the published sizes, training.

On the device machine (no network; run from the source tree, nothing to install):

    PYTHONPATH=. PYTHONUNBUFFERED=1 python benchmarks/gpu_session.py --out $OUT \\
        --speed-seconds 180 --train-minutes 4 --photos .gpu/photos

`.gpu/photos` is a folder of training photos packed beforehand on this side by
`benchmarks/gpu_pack.py` (ignored by git; name it in the device tool's `carry`). Everything is
written to one log, `OUT/gpu_session.log` (GPU, versions, the command, every figure), plus the
trained weights in OUT; copy the log into benchmarks/results/.

On a machine without CUDA the same script checks itself in a minute (`--quick`): tiny sizes, the
CUDA-only figures (peak GPU memory) say "no CUDA", nothing is skipped silently.

1. Correctness: the reference fixtures' objectives on the device in fp32 (<= 1e-5 relative to the
   values recorded from the authors' code) and under bf16 autocast (the error is reported); the toy
   inpainting semantics (a half completes in its class's colour, known pixels bit-exact); one edit
   through the editing session.
2. Speed: random weights of the published shapes at batch 1 and 64 with the paper's iterations and
   guidance: seconds per image and peak memory. (The authors' sampler is not timed here: their code
   is not part of this repository; time it beside ours with their repository carried along.)
3. Training: the photo model from the bundled weights with the edit-shaped recipe, for the minutes
   given, at a GPU-sized batch.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
TINY_REFERENCE_MODELS = ("tiny_fractalar", "tiny_fractalmar", "tiny_fractalmar_4level_guiding")
PUBLISHED = ("fractalar_in64", "fractalmar_in64", "fractalmar_base_in256", "fractalmar_large_in256",
             "fractalmar_huge_in256")
QUICK_SHAPES = ("tiny_mar_in16", "tiny_ar_in16")


class Log:
    def __init__(self, path: Path):
        self.path = path
        self.figures: dict = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w")

    def line(self, text: str) -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()

    def figure(self, key: str, value) -> None:
        self.figures[key] = value
        self.line(f"  {key}: {value}")

    def close(self) -> None:
        self.line("figures: " + json.dumps(self.figures, default=str))
        self.file.close()


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = ours.double().cpu(), theirs.double().cpu()
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp(min=1e-12))


def converted_references(folder: Path) -> dict[str, Path]:
    from fractal_studio.model.convert import convert_checkpoint

    paths = {}
    for name in (*TINY_REFERENCE_MODELS, "toy_cols"):
        paths[name] = folder / f"{name}.safetensors"
        source = REFERENCE / name
        convert_checkpoint(source / "checkpoint-last.pth", paths[name], str(source / "config.json"))
    return paths


# ----------------------------------------------------------------------------------- correctness
def check_objectives(log: Log, paths: dict[str, Path], device: torch.device) -> bool:
    from safetensors.torch import load_file

    from fractal_studio.model.weights import load_model

    ok = True
    for name in TINY_REFERENCE_MODELS:
        model = load_model(paths[name], device).eval()
        cases = load_file(str(REFERENCE / name / "cases.safetensors"))
        images, labels = cases["images"].to(device), cases["labels"].to(device)
        fp32, bf16 = [], []
        with torch.no_grad():
            for i in range(images.shape[0]):
                recorded = cases[f"nll_allmasked_cond_{i}"]
                loss = model.loss(images[i:i + 1], labels[i:i + 1], masks="all")
                fp32.append(relative_error(loss, recorded))
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = model.loss(images[i:i + 1], labels[i:i + 1], masks="all")
                bf16.append(relative_error(loss, recorded))
        log.figure(f"objective {name} fp32 max relative error", f"{max(fp32):.2e}")
        log.figure(f"objective {name} bf16 autocast max relative error", f"{max(bf16):.2e}")
        ok &= max(fp32) <= 1e-5
    return ok


def check_toy_inpainting(log: Log, paths: dict[str, Path], device: torch.device, seeds: int) -> bool:
    from fractal_studio.model.weights import load_model
    from fractal_studio.sampling import SampleRequest, sample_all

    colours = {int(k): np.array(v, dtype=float) for k, v in
               json.loads((REFERENCE / "toy_cols" / "colors.json").read_text())["colors"].items()}
    model = load_model(paths["toy_cols"], device).eval()
    hits = total = 0
    exact = True
    for cls, (left, right) in colours.items():
        canvas = np.zeros((16, 16, 3), np.uint8)
        canvas[:, :8], canvas[:, 8:] = left, right
        known = np.zeros((16, 16), bool)
        known[:, :8] = True
        result = sample_all(model, SampleRequest(canvas=canvas, known=known, class_id=cls, cfg=2.0,
                                                 candidates=seeds, seed=cls, iterations=(16, 4)))
        for candidate in result.candidates:
            exact &= bool(np.array_equal(candidate[:, :8], canvas[:, :8]))
            near = np.abs(candidate[:, 8:].reshape(-1, 3).astype(float) - right).max(axis=1) < 30
            hits += near.mean() >= 0.6
            total += 1
    log.figure("toy inpainting: right half in the class's colour", f"{hits}/{total}")
    log.figure("toy inpainting: known half bit-exact", exact)
    return exact and hits >= 0.9 * total


def check_session_edit(log: Log, paths: dict[str, Path], device: torch.device) -> bool:
    from fractal_studio.editing.document import Document
    from fractal_studio.editing.engine import EditOptions
    from fractal_studio.editing.session import EditSession, LoadedModel
    from fractal_studio.geometry import Rect

    session = EditSession()
    session.loaded = LoadedModel.load(paths["toy_cols"], device.type)
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    session.set_document(Document(image))
    session.rectangle(Rect(10, 8, 14, 12))
    mask = session.doc.mask.copy()
    run = session.start_run(EditOptions(candidates=2, iterations=(4, 2), seed=1))
    for _ in run.events():
        pass
    session.finish_run(run)
    outside = all(np.array_equal(c[~mask], image[~mask]) for c in session.candidates)
    log.figure("edit through the session: candidates", len(session.candidates))
    log.figure("edit through the session: pixels outside the mask bit-exact", outside)
    return outside and len(session.candidates) == 2


# ----------------------------------------------------------------------------------------- speed
def time_shapes(log: Log, device: torch.device, shapes, batches, budget_s: float) -> None:
    from fractal_studio.model import FractalModel, preset
    from fractal_studio.sampling import SampleRequest, prepare_sampling, sample_all

    started = time.perf_counter()
    for name in shapes:
        config = preset(name)
        torch.manual_seed(0)
        model = FractalModel(config).to(device).eval()
        prepare_sampling(model)
        defaults = config.sampling
        for batch in batches:
            if time.perf_counter() - started > budget_s:
                log.line(f"  speed {name} batch {batch}: not run ({budget_s:.0f} s speed budget spent)")
                continue
            request = SampleRequest.generate(config.resolution, class_id=0 if config.conditional else None,
                                             cfg=defaults.cfg, temperature=defaults.temperature,
                                             iterations=defaults.iterations, candidates=batch, seed=0)
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            sample_all(model, request)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak = (f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda"
                    else "no CUDA")
            log.figure(f"speed {name} batch {batch} (iterations {defaults.iterations}, cfg {defaults.cfg:g})",
                       f"{seconds / batch:.3f} s/image ({seconds:.1f} s), peak {peak}")
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


# -------------------------------------------------------------------------------------- training
def train_photo_model(log: Log, out: Path, photos: Path, minutes: float, device: torch.device,
                      batch: int) -> None:
    from fractal_studio.cli.main import main

    target = out / "photo_64_gpu.safetensors"
    argv = ["train", "--data", str(photos), "--preset", "photo_mar_in64", "--out", str(target),
            "--minutes", f"{minutes:g}", "--batch-size", str(batch), "--lr", "4e-4", "--ema", "0.998",
            "--seed", "1", "--device", device.type, "--masks", "edit", "--eval-every", "400",
            "--init-from", str(ROOT / "models" / "photo_64.safetensors")]
    log.line("training: fractal-studio " + " ".join(argv))
    start = time.perf_counter()
    code = main(argv)
    log.figure("training exit code", code)
    log.figure("training minutes", f"{(time.perf_counter() - start) / 60:.1f}")
    log.figure("trained weights", str(target) if target.is_file() else "none")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script on any machine")
    parser.add_argument("--speed-seconds", type=float, default=180.0)
    parser.add_argument("--train-minutes", type=float, default=0.0)
    parser.add_argument("--photos", help="a folder of training photos (benchmarks/gpu_pack.py)")
    parser.add_argument("--train-batch", type=int, default=256)
    args = parser.parse_args()
    out = Path(args.out)
    log = Log(out / "gpu_session.log")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log.line("command: " + " ".join(sys.argv))
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"no CUDA ({platform.machine()} CPU)"
    log.line(f"device: {name}")
    log.line(f"versions: python {platform.python_version()}, torch {torch.__version__}, "
             f"cuda {torch.version.cuda}, numpy {np.__version__}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        paths = converted_references(Path(folder))
        log.line("1. correctness")
        correct = check_objectives(log, paths, device)
        correct &= check_toy_inpainting(log, paths, device, seeds=4 if args.quick else 12)
        correct &= check_session_edit(log, paths, device)
        log.figure("correctness holds", correct)
    log.line("2. speed")
    shapes = QUICK_SHAPES if args.quick else PUBLISHED
    batches = (1, 2) if args.quick else (1, 64)
    time_shapes(log, device, shapes, batches, args.speed_seconds)
    if args.train_minutes > 0:
        log.line("3. training")
        if not args.photos or not Path(args.photos).is_dir():
            log.line("  not run: --photos must name a folder of training photos (benchmarks/gpu_pack.py)")
        else:
            train_photo_model(log, out, Path(args.photos), args.train_minutes, device, args.train_batch)
    log.figure("total minutes", f"{(time.perf_counter() - started) / 60:.1f}")
    log.close()
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
