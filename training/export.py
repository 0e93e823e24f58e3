#!/usr/bin/env python3
"""Export checkpoints to one fused ONNX model (RGB at the network size in, metres out).

    python training/export.py --depth runs/depth/checkpoints/best.pt --out model.onnx
    python training/export.py --depth runs/depth --out model.onnx   # a run folder: best.pt, else last.pt
    python training/export.py --depth DEPTH.pt --style STYLE.pt --out model.onnx [--fp16 | --fp16-weights]
    python training/export.py --depth DEPTH.pt --out depth.onnx --only depth
    python training/export.py --style STYLE.pt --out style.onnx --only style

Input ``image`` [N, H, W, 3] uint8 RGB (``--input-dtype float32``: float values in [0, 255]);
output ``depth`` [N, 1, H, W] float32 metres (``--only style``: ``styled`` [N, H, W, 3]).
The model's metadata (preset, input size, max depth, training camera, checkpoint hashes,
export date, precision) is logged and stored in the file; see depth_da_ros/export.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from depth_da_ros.checkpoint import CheckpointError, resolve_checkpoint, write_error_reason  # noqa: E402
from depth_da_ros.export import max_opset  # noqa: E402
from depth_da_ros.export import (  # noqa: E402
    DEFAULT_OPSET,
    INPUT_DTYPES,
    NETWORK_NAMES,
    ExportError,
    export_onnx,
    quiet_exporter_logs,
)

LOG = logging.getLogger("training.export")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=Path, help="depth-stage or distill-stage checkpoint (network 'depth'), or "
                                                   "its run folder (checkpoints/best.pt, else last.pt); a distilled "
                                                   "student takes no --style")
    parser.add_argument("--style", type=Path, help="style-stage checkpoint (network 'style'), the optional adapter, "
                                                   "or its run folder")
    parser.add_argument("--out", type=Path, required=True, help="output .onnx file")
    parser.add_argument("--only", choices=NETWORK_NAMES, help="export this network alone")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true",
                           help="half-precision weights and compute, for GPUs (I/O stays uint8/fp32)")
    precision.add_argument("--fp16-weights", action="store_true",
                           help="weights stored in fp16 (half the file), fp32 compute: for CPUs, which run fp16 "
                                "compute slowly")
    parser.add_argument("--input-dtype", choices=INPUT_DTYPES, default="uint8", help="dtype of the 'image' input")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset, 17 to {max_opset()} (default: %(default)s)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the ONNX Runtime vs torch check on a random frame")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.out.suffix != ".onnx":
        parser.error(f"--out must end in .onnx, got {args.out}")
    if not 17 <= args.opset <= max_opset():  # before any work: an exporter would fall back to another opset
        parser.error(f"--opset {args.opset} is not supported: use 17 to {max_opset()} (the newest opset of the "
                     "installed onnx package)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        quiet_exporter_logs()
    try:
        for flag in ("depth", "style"):
            given = getattr(args, flag)
            if given is not None and given.is_dir():
                setattr(args, flag, resolve_checkpoint(given))
                LOG.info("--%s %s: using %s", flag, given, getattr(args, flag))
        metadata = export_onnx(args.out, args.depth, args.style, only=args.only, fp16=args.fp16,
                               fp16_weights=args.fp16_weights, input_dtype=args.input_dtype, opset=args.opset,
                               verify=not args.no_verify)
    except (CheckpointError, ExportError) as exc:
        LOG.error("%s", exc)
        return 1
    except OSError as exc:  # e.g. a full disk while writing the model (written atomically: no partial file)
        reason, _ = write_error_reason(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(args.out) else ""
        LOG.error("cannot write %s%s: %s", args.out, where, reason)
        return 1
    props = {key: json.loads(value) for key, value in metadata.to_onnx_props().items()}
    LOG.info("exported %s\n%s", args.out.resolve(), json.dumps(props, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
