"""Your own network: a `torch.nn.Module` from a notebook, a `PATH.py:FUNCTION` on the command line, or an operator's
file of `register_model` calls at the app's start-up.

Each becomes a registry entry whose name says what identifies it, so the run cache never mixes two models:

* a module: `module:<class>@<12 hex of its state dict's SHA-256>`; its weights are used as given (a module's
  "untrained" checkpoint is the module itself; a state-dict file can still be loaded onto it);
* a file: `file:<file name>:<function>@<12 hex of the file's SHA-256>`; the function builds the network (with the
  image size when it takes one argument) under the run's init seed, like the library's own builders.

A file runs the user's own code: a command-line and library feature only. The web app never imports a file a
visitor sent; the operator's files (`$INVERSION_MODELS`, `make run MODELS=path.py`) are the operator's code.
Stops are derived from the module and its traced graph (`core.models.autostops.derive_stops`).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from core.errors import UserError
from core.models.registry import ARCHITECTURES, RESOLVERS, Architecture

USER_SOURCE = "yours"
# A notebook's modules and the command line's files: found by name (`get_architecture`, through `RESOLVERS`) but
# not listed with the curated and the operator's models in `ARCHITECTURES`, whose pickers and listings they are not.
USER_ARCHITECTURES: dict[str, Architecture] = {}
RESOLVERS.append(USER_ARCHITECTURES.get)


def state_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, shapes, dtypes and values), hex."""
    sha = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        sha.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        sha.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return sha.hexdigest()


def module_hash(module: nn.Module) -> str:
    """What identifies a module: its state dict, its structure (`repr`: strides, paddings, activations, which the
    state dict does not hold) and the source of its classes where Python has it (its `forward`)."""
    sha = hashlib.sha256(state_hash(module).encode())
    sha.update(repr(module).encode())
    for cls in sorted({type(m) for m in module.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        if cls.__module__.startswith("torch."):
            continue
        try:
            sha.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            sha.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    return sha.hexdigest()


def _entry(name: str, title: str, build: Callable[[int], nn.Module], min_size: int = 16,
           per_size: bool = False) -> Architecture:
    return Architecture(name, USER_SOURCE, title, min_size, build=build, feature_extraction="torchvision",
                        per_size=per_size)


def module_architecture(module: nn.Module, min_size: int = 16) -> Architecture:
    """The registry entry of a module (kept in `USER_ARCHITECTURES`, so a run's spec names it and the pipeline
    finds it).

    Args:
        module: any `nn.Module` taking (B, 3, H, W) images; it is copied, never changed.
        min_size: the smallest input it takes, in px.
    """
    if not isinstance(module, nn.Module):
        raise UserError(f"expected a torch.nn.Module, got {type(module).__name__}")
    frozen = copy.deepcopy(module).cpu().eval()
    cls = type(module).__qualname__
    name = f"module:{cls}@{module_hash(frozen)[:12]}"
    if name not in USER_ARCHITECTURES:
        USER_ARCHITECTURES[name] = _entry(name, f"{cls} (your module)", lambda size: copy.deepcopy(frozen), min_size)
    return USER_ARCHITECTURES[name]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_file_function(spec: str) -> tuple[Path, str, Callable]:
    """Import `PATH.py` and return (path, function name, function) for "PATH.py:FUNCTION" (runs the file)."""
    path_text, sep, func = str(spec).rpartition(":")
    if not sep or not func or not path_text.endswith(".py"):
        raise UserError(f"--model-file {spec!r}: expected PATH.py:FUNCTION (a function returning an nn.Module)")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"--model-file: {str(path)!r} not found")
    mod_name = f"_inversion_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    try:
        loader = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[mod_name] = module
        loader.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: one line naming it and what it raised
        sys.modules.pop(mod_name, None)
        raise UserError(f"--model-file {path.name}: importing it failed ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UserError(f"--model-file {path.name}: it has no function {func!r}")
    return path, func, fn


def _takes_size(fn: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        return False
    return len(params) >= 1


def file_architecture(spec: str, min_size: int = 16) -> Architecture:
    """The registry entry of "PATH.py:FUNCTION" (kept in `USER_ARCHITECTURES` under a name with the file's hash).

    Args:
        spec: the file and the function that returns the network; the function may take the image size.
        min_size: the smallest input it takes, in px.
    """
    path, func, fn = load_file_function(spec)
    name = f"file:{path.name}:{func}@{_file_sha256(path)[:12]}"
    sized = _takes_size(fn)

    def build(size: int) -> nn.Module:
        try:
            net = fn(size) if sized else fn()
        except Exception as exc:  # noqa: BLE001 - the user's function: one line naming it
            raise UserError(f"{path.name}:{func} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(net, nn.Module):
            raise UserError(f"{path.name}:{func} returned {type(net).__name__}, not a torch.nn.Module")
        return net

    USER_ARCHITECTURES[name] = _entry(name, f"{func} from {path.name}", build, min_size, per_size=sized)
    return USER_ARCHITECTURES[name]


def load_operator_models(spec: str | None = None) -> list[str]:
    """Import the operator's model files (`$INVERSION_MODELS`, paths separated by commas or the OS path separator),
    whose `register_model` / `register` calls add entries to the registry; returns the names they added.

    Raises:
        UserError: a file is missing or fails to import (the app says so at start-up).
    """
    raw = os.environ.get("INVERSION_MODELS", "") if spec is None else spec
    before = set(ARCHITECTURES)
    for part in [p.strip() for chunk in raw.split(",") for p in chunk.split(os.pathsep) if p.strip()]:
        path = Path(part).expanduser()
        if not path.is_file():
            raise UserError(f"INVERSION_MODELS: {str(path)!r} not found")
        mod_name = f"_inversion_models_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        if mod_name in sys.modules:
            continue
        try:
            loader = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[mod_name] = module
            loader.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the operator's file
            sys.modules.pop(mod_name, None)
            raise UserError(f"INVERSION_MODELS: importing {path.name} failed ({type(exc).__name__}: {exc})") from None
    return [n for n in ARCHITECTURES if n not in before]
