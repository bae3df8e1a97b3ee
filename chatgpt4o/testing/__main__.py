"""``python -m chatgpt4o.testing``: run the chatgpt4o.one emulator (see ``--help``)."""

import sys

try:
    from chatgpt4o.testing._serve import serve
except ImportError as missing:  # aiohttp: one line that says what to install
    if __name__ == "__main__":
        print(f"python -m chatgpt4o.testing: error: {missing}", file=sys.stderr)
        raise SystemExit(2) from None
    raise

if __name__ == "__main__":
    raise SystemExit(serve())
