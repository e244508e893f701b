"""Loaded at interpreter start by programs launched with ``nemoflow run`` (this folder leads PYTHONPATH).

It turns nemoflow on from the environment ``nemoflow run`` prepared, then hands over to any other
``sitecustomize`` the environment has, so a site's own start-up code still runs.
"""

import importlib
import os
import sys


def _start_nemoflow() -> None:
    try:
        from nemoflow._runner import start_from_environment

        start_from_environment()
    except Exception as exc:  # instrumentation must never stop the program from starting
        print(f"nemoflow: could not start instrumentation: {exc!r}", file=sys.stderr)


def _chain_to_next_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved_path = list(sys.path)
    ours = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_start_nemoflow()
_chain_to_next_sitecustomize()
