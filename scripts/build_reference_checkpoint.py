#!/usr/bin/env python3
"""Build the reference checkpoint of `gpbench regress` (or find it in the cache).

    python scripts/build_reference_checkpoint.py              # -> .cache/gpbench/reference-ckpt/tiny-cpu-reference
    python scripts/build_reference_checkpoint.py --cache DIR  # or GPBENCH_REFERENCE_DIR=DIR
    python scripts/build_reference_checkpoint.py --print-key  # the cache key (for CI cache keys)

The tiny Llama of gpbench.tiny_models fine-tuned by the SFT recipe's tiny-cpu preset at a fixed
CI size (300 steps of 16 on gp-l `train`, fixed seeds; gpbench/regress/reference.py has the
config): 5-10 minutes on 2 busy CPU cores the first time, then nothing while the cache key
(config, recipe code, task version, package versions) stays the same. Needs the hf and recipes
extras. Exit status 0 when the checkpoint is there, 1 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build or find the checkpoint, print its folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache folder (default: $GPBENCH_REFERENCE_DIR or .cache/gpbench/reference-ckpt)",
    )
    parser.add_argument(
        "--print-key", action="store_true", help="print the cache key and exit (builds nothing)"
    )
    args = parser.parse_args(argv)

    from gpbench.errors import GpbenchError
    from gpbench.regress.reference import ReferenceConfig, cache_key, ensure_reference

    if args.print_key:
        print(cache_key(ReferenceConfig()))
        return 0
    try:
        folder, built = ensure_reference(args.cache)
    except GpbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'built' if built else 'up to date (cached)'}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
