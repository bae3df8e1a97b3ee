"""`python -m chatgpt4o`: the command line (see `python -m chatgpt4o --help`)."""

from chatgpt4o._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
