"""The run config of `tradegap run` on the user's files: a YAML file, then the flags on top.

`--prices` feeds `market_data` (`prices_paths`); `--weights` feeds `target_weights`
(`weights_path`) and skips the model in `signals`; `--signals` feeds `signals`
(`signals_path`). `--config` is a Dagster run config (YAML, the `ops: ...` layout of
`dagster job execute -c`); a flag given beside it wins over the same field in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.errors import InputError


def user_run_config(prices: str | None = None, weights: str | None = None,
                    signals: str | None = None, config: str | None = None) -> dict[str, Any]:
    """The run config for these files: `config`'s content with the flags merged in."""
    if weights and signals:
        raise InputError("command line", "give --weights or --signals, not both")
    merged = read_run_config(config) if config else {}
    flags: dict[str, dict[str, Any]] = {}
    if prices:
        flags["market_data"] = {"prices_paths": [_existing(prices)]}
    if weights:
        flags["target_weights"] = {"weights_path": _existing(weights)}
        flags["signals"] = {"skip": True}
    if signals:
        flags["signals"] = {"signals_path": _existing(signals)}
    ops = merged.setdefault("ops", {})
    for op, fields in flags.items():
        ops.setdefault(op, {}).setdefault("config", {}).update(fields)
    return merged


def read_run_config(path: str) -> dict[str, Any]:
    """A YAML run config as a dict; a file that is missing or not a mapping is bad input."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file.name, f"file not found: {file}")
    try:
        content = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise InputError(file.name, f"not valid YAML: {str(error).splitlines()[0]}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise InputError(file.name, "a run config is a mapping (ops: ..., resources: ...)")
    return content


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, nested mappings merged key by key (`extra` wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _existing(path: str) -> str:
    """`path` made absolute, refused in one line when it is not a file."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file.name, f"file not found: {file}")
    return str(file.resolve())


def user_inputs(run_config: dict[str, Any]) -> list[str]:
    """The files a run config reads (prices, weights, signals, a fill log): an artifact
    folder may not contain them."""
    found = []
    for op in run_config.get("ops", {}).values():
        fields = (op or {}).get("config") or {}
        found += list(fields.get("prices_paths") or [])
        found += [fields[name] for name in ("weights_path", "signals_path", "fills_path")
                  if fields.get(name)]
    return found
