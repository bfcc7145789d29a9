"""Small argparse helpers shared by the step CLIs."""

import argparse
import logging
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_features_arguments(parser: argparse.ArgumentParser) -> None:
    """The transform output a model step reads: FEATURES_DIR and --stats."""
    parser.add_argument("features_dir", type=Path,
                        help="the transform's output: train/eval/test-*.csv shards")
    parser.add_argument("--stats", type=Path, default=None,
                        help="stats.json of the transform (default: FEATURES_DIR/stats.json)")


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def configure_logging(quiet: bool) -> None:
    """INFO progress lines on stderr (WARNING only with --quiet)."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
