"""Where the shipped data folders (``layouts/``, ``fonts/``, ``examples/``) are.

In a checkout they are top-level folders of the repository; in an installed wheel they ride
inside the package (pyproject.toml force-includes them). Both are found the same way.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the shipped folder ``name`` (``"layouts"``, ``"fonts"`` or ``"examples"``).

    Looks inside the installed package first, then in the repository checkout above it.
    Raises FileNotFoundError naming both places when neither exists.
    """
    candidates = (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"shipped folder {name!r} not found (looked in {tried})")
