"""The public API: explicit __all__ everywhere, and a light import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import ragnest


def test_top_level_all_is_explicit_and_importable():
    assert ragnest.__all__, "ragnest.__all__ must be explicit"
    assert len(set(ragnest.__all__)) == len(ragnest.__all__)
    for name in ragnest.__all__:
        assert hasattr(ragnest, name), name
    public = {n for n in vars(ragnest) if not n.startswith("_") and n != "annotations" and not isinstance(getattr(ragnest, n), type(ragnest))}
    assert public <= set(ragnest.__all__), public - set(ragnest.__all__)


def test_every_module_declares_all():
    for info in pkgutil.walk_packages(ragnest.__path__, "ragnest."):
        if info.name.startswith("ragnest._"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional extras (transformers, ...) may be missing
            continue
        assert hasattr(module, "__all__"), f"{info.name} lacks __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name!r}"


def test_import_ragnest_does_not_import_torch_or_models():
    code = (
        "import sys, ragnest, ragnest.pipeline, ragnest.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'wordllama', 'rapidocr', 'onnxruntime') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
