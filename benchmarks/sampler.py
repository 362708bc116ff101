"""Sampler speed, measured side by side in one run, printed as ratios.

    python benchmarks/sampler.py                 # CPU figures with our sampler only
    REFERENCE_DIR=/tmp/fractalgen-reference python benchmarks/sampler.py --reference-python PY

With REFERENCE_DIR (the authors' code prepared as in shared/reference/run-reference/README.md,
kept outside this repository) the same random weights are exported to their checkpoint layout and
their sampler is timed in a subprocess with the same iterations and guidance.

Figures:
- with REFERENCE_DIR and --whole-process N: whole processes, ours (`fractal-studio generate` on the
  random weights saved as a model file: imports, loading, weight preparation, sampling, writing
  the PNGs) against theirs (their script: imports, building, loading, sampling), alternated N
  times, medians and the median of the pairs' ratios;
- full 64x64 generation, ours vs theirs (same weights, iterations, guidance, threads), ours with
  the automatic precision and in fp32; with --repeat N, ours and theirs alternated N times and the
  median of the pairs' ratios; the one-time weight preparation after loading
  (`prepare_sampling`, what the app does when it loads a model) is timed apart, as the authors'
  model loading is not in their time;
- inpainting a hole of 10% of the image vs a full generation (ours);
- time to the first event with the bundled model (ours);
- on CUDA: seconds per image for FractalMAR-B/L/H-sized random weights, batch 1 and 64, with and
  without our optimisations (bf16 autocast + fused attention vs fp32 math attention), peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.attention  # noqa: F401 (sdpa_kernel for the unoptimised GPU variant)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import random_model, timed  # noqa: E402

from fractal_studio.sampling import Progress, SampleRequest, prepare_sampling, sample, sample_all  # noqa: E402
from fractal_studio.sampling.precision import sampling_precision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def export_for_reference(model, folder: Path) -> None:
    """Writes our random weights as the authors' checkpoint-last.pth + config.json."""
    import argparse as ap

    from fractal_studio.model.convert import authors_key

    config = model.config
    levels = len(config.generators)
    state = {authors_key(k, levels): v for k, v in model.state_dict().items()}
    checkpoint = {"model": state, "args": ap.Namespace(model="custom"), "epoch": 0}
    torch.save(checkpoint, folder / "checkpoint-last.pth")
    levels_ = config.levels
    lists = {
        "img_size_list": [lv.size for lv in levels_], "embed_dim_list": [lv.width for lv in levels_],
        "num_blocks_list": [lv.depth for lv in levels_], "num_heads_list": [lv.heads for lv in levels_],
        "generator_type_list": [lv.kind if lv.kind != "head" else "ar" for lv in config.levels],
        "num_conds": config.num_conds, "guiding_pixel": config.guiding_pixel, "class_num": config.class_num,
    }
    (folder / "config.json").write_text(json.dumps(lists))


def time_reference(model, count: int, cfg: float, iterations, threads: int, python: str) -> float | None:
    reference = os.environ.get("REFERENCE_DIR")
    if not reference:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        export_for_reference(model, Path(tmp))
        command = reference_command(Path(tmp), count, cfg, iterations, threads, python)
        out = subprocess.run(command, capture_output=True, text=True, cwd=reference,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])["sample_seconds"]


def reference_command(folder: Path, count: int, cfg: float, iterations, threads: int,
                      python: str) -> list[str]:
    reference = os.environ["REFERENCE_DIR"]
    return [python, str(Path(reference) / "perf_ref.py"), str(folder), str(count), str(cfg),
            ",".join(map(str, iterations)), str(threads)]


def whole_processes(model, args, iterations) -> str:
    """Ours and theirs as whole processes, alternated args.whole_process times (the machine's speed
    drifts: the ratio of each pair is what is compared)."""
    from fractal_studio.model.weights import save_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export_for_reference(model, folder)
        save_model(model, folder / "model.safetensors")
        ours_command = [sys.executable, "-m", "fractal_studio.cli.main", "generate", "--model",
                        str(folder / "model.safetensors"), "--out", str(folder / "out.png"), "--count",
                        str(args.count), "--class", "0", "--cfg", str(args.cfg), "--iterations",
                        ",".join(map(str, iterations)), "--threads", str(args.threads), "--quiet"]
        theirs_command = reference_command(folder, args.count, args.cfg, iterations, args.threads,
                                           args.reference_python)
        ours, theirs = [], []
        for _ in range(args.whole_process):
            for command, times, cwd in ((ours_command, ours, ROOT),
                                        (theirs_command, theirs, os.environ["REFERENCE_DIR"])):
                start = time.perf_counter()
                out = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if out.returncode:
                    raise SystemExit(f"failed: {' '.join(command)}\n{out.stderr[-2000:]}")
                times.append(time.perf_counter() - start)
    ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
    return (f"whole processes ({args.whole_process} pairs): ours {statistics.median(ours):.2f}s, authors' "
            f"{statistics.median(theirs):.2f}s, speed-up {statistics.median(ratios):.2f}x "
            f"(pairs {min(ratios):.2f}..{max(ratios):.2f}x)")


def time_prepare(model, precision: str) -> float:
    start = time.perf_counter()
    prepare_sampling(model, precision)
    return time.perf_counter() - start


def time_ours(model, request) -> float:
    start = time.perf_counter()
    sample_all(model, request)
    return time.perf_counter() - start


def cpu_figures(args) -> None:
    torch.set_num_threads(args.threads)
    for preset_name in args.presets:
        model = random_model(preset_name, class_num=10, **widths_changed(preset_name, args.widths))
        if args.widths:
            preset_name += f" (widths {'/'.join(map(str, args.widths))})"
        side = model.config.resolution
        iterations = model.config.sampling.iterations if not args.iterations else tuple(args.iterations)
        request = SampleRequest.generate(side, class_id=0, cfg=args.cfg, candidates=args.count, seed=0,
                                         iterations=iterations)
        # labels cycle like the reference script's; class 0 for all is equivalent in cost
        # What the app does once after loading a model (the authors' time excludes loading too).
        prepared = {name: time_prepare(model, name) for name in ("auto", "fp32")}
        precision = sampling_precision(model, torch.device("cpu"), "auto")
        # Ours and theirs alternated --repeat times: the machine's speed drifts, so each pair's
        # ratio is what compares them; the fastest of each is shown beside the median ratio.
        ours_times, theirs_times = [], []
        for _ in range(args.repeat):
            ours_times.append(time_ours(model, request))
            theirs_times.append(time_reference(model, args.count, args.cfg, iterations, args.threads,
                                               args.reference_python))
        ours = min(ours_times)
        ours_fp32 = ours
        # also without bf16, to show what the precision alone gives
        if precision != "fp32" and not args.skip_fp32:
            fp32_request = replace(request, precision="fp32")
            ours_fp32 = min(time_ours(model, fp32_request) for _ in range(args.repeat))
        line = f"{preset_name}: full {side}x{side} generation x{args.count}, cfg {args.cfg}, " \
               f"iterations {iterations}: ours {ours:.2f}s ({precision})"
        if precision != "fp32" and not args.skip_fp32:
            line += f", ours in fp32 {ours_fp32:.2f}s"
        if None not in theirs_times:
            theirs = min(theirs_times)
            ratios = [t / o for o, t in zip(ours_times, theirs_times, strict=True)]
            line += f", authors' {theirs:.2f}s, speed-up {statistics.median(ratios):.2f}x"
            if args.repeat > 1:
                line += f" (median of {args.repeat} pairs, {min(ratios):.2f}..{max(ratios):.2f}x)"
            if precision != "fp32" and not args.skip_fp32:
                line += f" ({theirs / ours_fp32:.2f}x in fp32)"
        print(line + f"; preparing the weights after loading: {prepared['auto']:.2f}s "
                     f"({prepared['fp32']:.2f}s for fp32)", flush=True)
        if args.whole_process and os.environ.get("REFERENCE_DIR"):
            print(f"{preset_name}: " + whole_processes(model, args, iterations), flush=True)
        if args.skip_hole:
            continue
        hole = np.ones((side, side), bool)
        edge = int(round(side * 0.316))  # a square of 10% of the image
        start = (side - edge) // 2
        hole[start:start + edge, start:start + edge] = False
        canvas = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
        inpaint = SampleRequest(canvas=canvas, known=hole, class_id=0, cfg=args.cfg, candidates=args.count,
                                seed=0, iterations=iterations)
        t_hole = min(time_ours(model, inpaint) for _ in range(args.repeat))
        print(f"{preset_name}: inpainting a {edge}x{edge} hole ({(~hole).mean():.0%}): {t_hole:.2f}s = "
              f"{t_hole / ours:.0%} of a full generation")


def widths_changed(preset_name: str, widths: list[int] | None) -> dict:
    """The preset's levels with other widths (one per level, the pixel head's last), as changes."""
    if not widths:
        return {}
    from fractal_studio.model import preset

    levels = preset(preset_name).levels
    if len(widths) != len(levels):
        raise SystemExit(f"--widths needs {len(levels)} widths for {preset_name}, got {len(widths)}")
    return {"levels": tuple(replace(level, width=width) for level, width in zip(levels, widths, strict=True))}


def first_event_latency(threads: int) -> None:
    torch.set_num_threads(threads)
    from fractal_studio.model.weights import load_model

    path = ROOT / "models" / "photo_64.safetensors"
    if not path.is_file():
        print("first event: bundled model not found, skipped")
        return
    start = time.perf_counter()
    model = load_model(path)
    loaded = time.perf_counter() - start
    request = SampleRequest.generate(model.config.resolution, seed=0)
    start = time.perf_counter()
    for event in sample(model, request):
        if isinstance(event, Progress):
            print(f"first event with the bundled model: {time.perf_counter() - start:.3f}s after the start "
                  f"(model load {loaded:.2f}s)")
            break


def cuda_figures() -> None:
    if not torch.cuda.is_available():
        print("CUDA: not available, GPU figures skipped")
        return
    import torch.nn.functional as F

    from fractal_studio.model import layers

    fused = layers.attention

    def math_attention(q, k, v, causal=False, mask=None, dropout=0.0):
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                  is_causal=causal and mask is None).to(v.dtype)

    for name in ("fractalmar_base_in256", "fractalmar_large_in256", "fractalmar_huge_in256"):
        model = random_model(name, device="cuda")
        for batch in (1, 64):
            for optimised in (True, False):
                layers.attention = fused if optimised else math_attention
                torch.cuda.reset_peak_memory_stats()
                request = SampleRequest.generate(256, class_id=1, cfg=4.0, candidates=batch, seed=0,
                                                 precision="auto" if optimised else "fp32")
                results: dict = {}
                with timed(results, "t"):
                    sample_all(model, request)
                layers.attention = fused
                peak = torch.cuda.max_memory_allocated() / 2**30
                label = "bf16+fused" if optimised else "fp32+math"
                print(f"{name} batch {batch:>2} {label}: {results['t'] / batch:.2f} s/image, "
                      f"peak {peak:.1f} GiB")
        del model
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+",
                        default=["small_mar_in64", "small_ar_in64", "medium_mar_in64"])
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--widths", type=int, nargs="+",
                        help="other widths for the levels, the pixel head's last (e.g. the speed issue's "
                             "small FractalMAR: --presets medium_mar_in64 --widths 256 128 64)")
    parser.add_argument("--cfg", type=float, default=2.0)
    parser.add_argument("--iterations", type=int, nargs="*")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternated runs of ours and theirs (sampling figures): the median pair ratio")
    parser.add_argument("--reference-python", default=sys.executable)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-fp32", action="store_true", help="no fp32 run of ours beside auto")
    parser.add_argument("--skip-hole", action="store_true", help="no inpainting figure")
    parser.add_argument("--whole-process", type=int, default=0, metavar="N",
                        help="with REFERENCE_DIR: also N alternated pairs of whole processes")
    args = parser.parse_args()
    if not args.skip_cpu:
        cpu_figures(args)
        first_event_latency(args.threads)
    cuda_figures()


if __name__ == "__main__":
    main()
