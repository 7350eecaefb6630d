"""The ``ragnest`` command (typer + rich).

    ragnest fit manuals/            # only for ladders with rotation: pca
    ragnest ingest manuals/ --store ./.ragnest
    ragnest sync manuals/ --dry-run    # new, changed, moved and deleted files
    ragnest delete manuals/old.pdf      # by path, folder or document id
    ragnest query "how do I reset the device?" --k 5 --json
    ragnest stats
    ragnest demo
    ragnest list
    ragnest validate pipelines/lite.yaml
    ragnest eval beir/scifact --sweep budget.coarse=100,1000
"""

from __future__ import annotations

import sys

from ragnest.cli import admin, documents, eval, ingest, query  # noqa: F401  (the commands register on import)
from ragnest.cli._app import app, err

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
