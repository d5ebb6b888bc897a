"""``python -m zse``: the zse command line."""

from zse.cli import main

if __name__ == "__main__":
    main()
