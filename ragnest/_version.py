"""The package version, importable from every layer (nothing above ground imports ``ragnest``).

    >>> from ragnest._version import __version__
    >>> __version__.count(".") >= 2
    True
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
