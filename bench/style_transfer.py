"""Benchmark neural style transfer: seconds per 512-px image and final losses, against a plain baseline.

    LOOKALIKE_WEIGHTS=random python bench/style_transfer.py [--size 512] [--steps 60]

Both runs start from the same photo and painting and use the same loss weights and step count:
* ours: ``style_transfer.stylize`` at its defaults (bfloat16 VGG19, 1/4 of the steps at half size, Adam);
* ablation: the same in bfloat16 at a single scale (what bfloat16 alone buys);
* baseline: single-scale Adam at full resolution in float32 for the same number of steps.
Final losses are measured the same way for both: at full resolution, in float32.
Wall time on a shared machine depends on the load, so CPU time and the load average are printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import style_transfer  # noqa: E402
import utils  # noqa: E402
from lookalike.style import engine  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CONTENT = DATA / "clothing-dataset-small/test/dress/06a00c0f-5f9a-410d-a7da-3881a9df3a71.jpg"
STYLE = DATA / "images-by-style/s_impressionist-14.jpg"


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def full_res_losses(model, image, content, style, size, strength) -> engine.Losses:
    prepared_content, prepared_style = engine.prepare_inputs(content, style, engine.Options(size=size))
    target = engine.make_target(model, prepared_content, prepared_style, "float32")
    weights = engine.Weights(style_transfer.strength_factor(strength), 1.0, 1.0)
    return model.losses(np.asarray(image, dtype=np.float32), target, weights, "float32")


def baseline(model, content, style, size, steps, strength) -> engine.Result:
    options = engine.Options(
        size=size, steps=steps, optimizer="adam", schedule=((1, 1.0),), dtype="float32",
        weights=engine.Weights(style_transfer.strength_factor(strength), 1.0, 1.0),
    )  # fmt: skip
    return engine.run(model, content, style, options)


def row(name, result, wall, cpu, losses) -> str:
    height, width = result.image.shape[:2]
    return (
        f"{name:<31} {width}x{height:<5} {result.steps:>5} {wall:>8.1f} {cpu:>8.1f} {wall / result.steps:>7.2f}"
        f" {losses.style:>9.4f} {losses.content:>9.4f} {losses.tv:>8.4f} {losses.total:>9.4f}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=CONTENT)
    parser.add_argument("--style", type=Path, default=STYLE)
    parser.add_argument("--size", type=int, default=style_transfer.DEFAULT_TRANSFER_SIZE)
    parser.add_argument("--steps", type=int, default=style_transfer.DEFAULT_TRANSFER_STEPS)
    parser.add_argument("--strength", type=float, default=style_transfer.DEFAULT_STRENGTH)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ablation", action="store_true")
    parser.add_argument("--save", type=Path, help="folder for the two output images")
    args = parser.parse_args(argv)

    print(f"weights={utils.weights_label('vgg19')} cores={os.cpu_count()} load average at start={os.getloadavg()}")
    content = utils.load_image(args.content).astype(np.float32)
    style = utils.load_image(args.style).astype(np.float32)
    model, build_s, _ = timed(style_transfer.transfer_model)
    # Warm-up (traces both dtypes' step functions once), not counted.
    _, warm_s, _ = timed(lambda: (style_transfer.stylize(content, style, size=64, steps=2, model=model),
                                  baseline(model, content, style, 64, 2, args.strength)))  # fmt: skip
    print(f"model build {build_s:.1f} s, warm-up (tracing) {warm_s:.1f} s, not counted below")
    print(f"content={args.content.name} style={args.style.name} size={args.size} steps={args.steps}")
    header = f"{'run':<31} {'output':<9} {'steps':>5} {'wall s':>8} {'cpu s':>8} {'s/step':>7}"
    print(header + f" {'style':>9} {'content':>9} {'tv':>8} {'total':>9}   (losses: full res, float32)")

    ours, ours_wall, ours_cpu = timed(
        lambda: style_transfer.stylize(content, style, size=args.size, steps=args.steps,
                                       strength=args.strength, model=model)  # fmt: skip
    )
    ours_losses = full_res_losses(model, ours.image, content, style, args.size, args.strength)
    print(row("ours (bf16, 2 scales, Adam)", ours, ours_wall, ours_cpu, ours_losses), flush=True)
    print(f"  steps per level {ours.level_steps} (coarsest first, {engine.DEFAULT_SCHEDULE})")
    if args.save:
        style_transfer.save_png(ours.image, args.save / "ours.png")
    if args.skip_baseline:
        return 0

    if not args.skip_ablation:
        single, single_wall, single_cpu = timed(
            lambda: style_transfer.stylize(content, style, size=args.size, steps=args.steps,
                                           strength=args.strength, coarse_to_fine=False, model=model)  # fmt: skip
        )
        single_losses = full_res_losses(model, single.image, content, style, args.size, args.strength)
        print(row("ablation (bf16, 1 scale, Adam)", single, single_wall, single_cpu, single_losses), flush=True)

    base, base_wall, base_cpu = timed(lambda: baseline(model, content, style, args.size, args.steps, args.strength))
    base_losses = full_res_losses(model, base.image, content, style, args.size, args.strength)
    print(row("baseline (fp32, 1 scale, Adam)", base, base_wall, base_cpu, base_losses), flush=True)
    if args.save:
        style_transfer.save_png(base.image, args.save / "baseline.png")
    # The baseline's own loss history (float32, full resolution) gives its loss at our wall or CPU time.
    for label, ours_time, base_time in (("wall", ours_wall, base_wall), ("CPU", ours_cpu, base_cpu)):
        equal_steps = max(1, min(len(base.history), int(ours_time / (base_time / base.steps))))
        equal_time_loss = float(np.min(base.history[:equal_steps]))
        print(f"baseline at our {label} time ({equal_steps} steps): total loss {equal_time_loss:.4f}")
    print(f"load average at end={os.getloadavg()}")
    print(
        f"speed-up {base_wall / ours_wall:.1f}x wall, {base_cpu / ours_cpu:.1f}x cpu; "
        f"target <= 60 s: {'met' if ours_wall <= 60 else 'missed'} ({ours_wall:.1f} s wall, "
        f"{ours_cpu / (os.cpu_count() or 1):.1f} s cpu/core); "
        f"final loss vs baseline: {ours_losses.total:.4f} vs {base_losses.total:.4f} "
        f"({'no worse' if ours_losses.total <= base_losses.total else 'worse'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
