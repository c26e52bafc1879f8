"""Locate pretrained files shipped inside PyPI packages without importing those packages.

`import resemblyzer` fails on current setuptools (webrtcvad needs pkg_resources), and importing
silero_vad pulls in code we do not use; `find_spec` only locates the package directory.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed (pip install {package.replace('_', '-')})")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r} package")
    return path
