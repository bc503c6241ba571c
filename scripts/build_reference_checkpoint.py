#!/usr/bin/env python3
"""Check the shipped reference checkpoint of `gpbench regress`, or rebuild it.

    python scripts/build_reference_checkpoint.py            # check its files against their sha256
    python scripts/build_reference_checkpoint.py --rebuild  # train it afresh and replace it

The reference (gpbench/regress/data/tiny-cpu-reference, ~2 MB) is the tiny Llama of
gpbench.tiny_models fine-tuned by the SFT recipe's tiny-cpu preset at a fixed CI size (300 steps
of 16 on gp-l `train`, fixed seeds, one thread; gpbench/regress/reference.py has the config). It
ships as fixed bytes because training on another machine gives another model, and expectations
recorded for one model fail for another. --rebuild (1-10 min on 2 CPU cores; the hf and recipes
extras) changes the reference itself: re-record its expectations after it with
`gpbench regress --only tiny-cpu-reference --update`, and commit both.
Exit status 0 when the checkpoint is whole (or rebuilt), 1 on an error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, check or rebuild the checkpoint, print its folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="train the reference afresh and replace the shipped folder with it",
    )
    parser.add_argument(
        "--into",
        type=Path,
        default=None,
        help="--rebuild: write the new reference here instead of over the shipped one",
    )
    args = parser.parse_args(argv)

    from gpbench.errors import GpbenchError
    from gpbench.regress import reference

    if args.into is not None and not args.rebuild:
        parser.error("--into goes with --rebuild")
    try:
        if args.rebuild:
            target = args.into or reference.FOLDER
            config = reference.ReferenceConfig()
            with tempfile.TemporaryDirectory(prefix="gpbench-reference-") as work:
                built = reference.build_reference(Path(work), config)
                left_out = reference.install_reference(built, config, target)
            reference.check_reference(target)
            print(f"rebuilt: {target} (left out: {', '.join(left_out) or 'nothing'})")
            print("next: gpbench regress --only tiny-cpu-reference --update, then commit both")
        else:
            print(f"whole: {reference.check_reference()}")
    except GpbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
