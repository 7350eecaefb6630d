"""Collection rules for the doctest run over ``ragnest/`` (see pytest's ``testpaths``).

``ragnest/distributed/_ray.py`` is the one module that imports Ray at import time (the
adapter); without the ``ray`` extra its doctests cannot be collected, so it is left out,
as the Ray test modules skip themselves.
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("ray") else ["ragnest/distributed/_ray.py"]
