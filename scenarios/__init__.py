"""Declarative payment scenarios (TOML files in this folder) and where to find them."""

from pathlib import Path

FOLDER = Path(__file__).parent
