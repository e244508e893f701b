"""The public surface is exactly what ``__all__`` says, and every module keeps its own ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import nemoflow


def test_all_matches_public_names() -> None:
    public = {name for name in dir(nemoflow) if not name.startswith("_")}
    modules = {name for name, _ in ((m.name, m) for m in pkgutil.iter_modules(nemoflow.__path__))}
    public -= modules  # submodules appear as attributes once imported
    public -= {"annotations"}  # from __future__ import
    public -= {"_LAZY"}
    assert set(nemoflow.__all__) - {"__version__"} == public


def test_every_exported_name_resolves() -> None:
    for name in nemoflow.__all__:
        assert getattr(nemoflow, name) is not None, name


def test_private_modules_declare_all() -> None:
    for info in pkgutil.iter_modules(nemoflow.__path__):
        if info.name == "__main__":
            continue
        module = importlib.import_module(f"nemoflow.{info.name}")
        assert isinstance(getattr(module, "__all__", None), list), f"nemoflow.{info.name} lacks __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"nemoflow.{info.name}.__all__ names missing {name}"


def test_error_tree() -> None:
    assert issubclass(nemoflow.CodecError, nemoflow.NemoflowError)
    assert issubclass(nemoflow.DecodeError, nemoflow.CodecError)
    assert issubclass(nemoflow.DecodeError, ValueError)
    assert issubclass(nemoflow.EncodeError, nemoflow.CodecError)
    for name in ("PolicyError", "GuardrailBlocked", "ConfigurationError"):
        assert issubclass(getattr(nemoflow, name), nemoflow.NemoflowError)
    error = nemoflow.DecodeError("bad role", path="$.messages[0].role", codec="openai-chat")
    assert error.path == "$.messages[0].role"
    assert str(error) == "openai-chat: bad role (at $.messages[0].role)"
    blocked = nemoflow.GuardrailBlocked("contains a credit card number", guardrail="pii")
    assert blocked.reason == "contains a credit card number"
    assert "pii" in str(blocked)


def test_codec_error_pickles_with_path() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(nemoflow.DecodeError("x", path="$.a[1]", codec="c")))
    assert isinstance(error, nemoflow.DecodeError)
    assert (error.message, error.path, error.codec) == ("x", "$.a[1]", "c")


def test_optional_adapters_load_lazily() -> None:
    import subprocess
    import sys

    probe = "import sys, nemoflow; print('requests' in sys.modules, 'aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]
    assert nemoflow.requests_session is not None and callable(nemoflow.aiohttp_middleware)
