"""``python -m ragnest.cli``: the ``ragnest`` command."""

from ragnest.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
