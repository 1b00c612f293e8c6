"""Side environments: a peer whose pins clash with ours runs in its own virtual environment.

`setup(path, requirements)` creates it once per set of requirements; `run_module` runs one
of our adapter modules there over Parquet files in a temporary folder (`prices.parquet`,
`inputs.parquet`, `settings.json` in; `fills.parquet`, `equity.parquet` and whatever else
the module writes out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[2]


def setup(path: Path, requirements: tuple[str, ...]) -> Path:
    """Create (once per set of requirements) a virtual environment at `path`; its python."""
    python = path / "bin" / "python"
    done = path / ".tradegap-ready"
    if done.exists() and done.read_text() == " ".join(requirements) + "\n":
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    done.write_text(" ".join(requirements) + "\n")
    return python


def interpreter(python: str | Path | None, variable: str, default: Path, module: str) -> Path:
    """The side interpreter: `python`, else `$variable`, else `default`'s python."""
    chosen = Path(python or os.environ.get(variable) or default / "bin" / "python")
    if not chosen.exists():
        raise RuntimeError(f"no side environment at {chosen}: create it with "
                           f"`python -m {module} --setup` or set {variable}")
    return chosen


def run_module(module: str, python: Path, prices: pl.DataFrame, inputs: pl.DataFrame,
               settings: dict) -> dict[str, pl.DataFrame]:
    """Run `python -m module FOLDER` in the side interpreter; the tables it wrote, by name
    (`fills`, `equity`, ...)."""
    with tempfile.TemporaryDirectory(prefix="tradegap-side-") as folder:
        work = Path(folder)
        prices.write_parquet(work / "prices.parquet")
        inputs.write_parquet(work / "inputs.parquet")
        (work / "settings.json").write_text(json.dumps(settings))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([str(python), "-m", module, str(work)], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{module} failed in {python}:\n{done.stderr[-4000:]}")
        return {path.stem: pl.read_parquet(path) for path in work.glob("*.parquet")
                if path.stem not in ("prices", "inputs")}
