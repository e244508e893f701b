"""Loaded at interpreter start by programs launched with ``nemoflow run`` (this folder leads PYTHONPATH).

It turns nemoflow on from the environment ``nemoflow run`` prepared, then hands over to any other
``sitecustomize`` the environment has, so a site's own start-up code still runs.

Whatever goes wrong here (a bad ``NEMOFLOW_RUN_*`` value, an exporter that cannot start, a Python that
cannot import nemoflow), the program still runs, uninstrumented, after one warning line on stderr.
"""

import importlib
import os
import sys


def _warn(reason: str) -> None:
    line = " ".join(reason.split())  # one line, whatever the message holds
    try:
        print(f"nemoflow: instrumentation is off for this program: {line}", file=sys.stderr, flush=True)
    except Exception:  # no usable stderr: nothing left to tell, and the program must run
        pass


def _start_nemoflow() -> None:
    try:
        from nemoflow._runner import start_from_environment

        start_from_environment()
    except ImportError as exc:
        if exc.name != "nemoflow":
            _warn(f"{type(exc).__name__}: {exc}")
        else:
            _warn(
                f"{sys.executable} cannot import nemoflow; run the program with the Python it is installed in"
            )
    except Exception as exc:  # instrumentation must never stop the program from starting
        _warn(f"{type(exc).__name__}: {exc}")


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
