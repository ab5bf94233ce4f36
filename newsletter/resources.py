"""Where the built-in templates and examples live: inside the wheel, or at the repository's top."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`templates` or `examples`: packaged copy (wheel install) else the checkout's folder."""
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def template_dirs(kind: str, override: Path | None) -> list[Path]:
    """Folders searched for `kind` templates ("email" or "web"), an operator's override first."""
    dirs = [data_dir("templates") / kind]
    if override is not None:
        dirs.insert(0, override / kind)
    return dirs


def sample_feed() -> Path:
    return data_dir("examples") / "london-daily.xml"
