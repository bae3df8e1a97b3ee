"""``python -m chatgpt4o.testing``: run the chatgpt4o.one emulator (see ``--help``)."""

from chatgpt4o.testing._serve import serve

if __name__ == "__main__":
    raise SystemExit(serve())
