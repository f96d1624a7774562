"""Real text every machine has: the Python standard library's own source files, read from the
running interpreter's Lib folder (`sysconfig.get_paths()["stdlib"]`; nothing is downloaded).

`write_stdlib_text(out)` writes a long-format Parquet (or CSV, by suffix) file, one row per
character of a fixed subset of files (`STDLIB_FILES`, each cut to its first `MAX_CHARS`
characters), with these columns:

- `sequenceId`: the file's index in `STDLIB_FILES` (0, 1, ...);
- `itemPosition`: the character's offset in the file (0, 1, ...);
- `file`: the file name (not a feature; kept for reading the file);
- `char`: the character as a category: printable ASCII as itself, and the names `space`,
  `newline`, `tab` and `other` (any other character) for the rest.

The subset is fixed and documented; its text is the one of the interpreter that runs seqdb
(Python 3.9 and later ship every file in the list), so two machines with the same Python
version write the same file. A file missing from an unusual installation is skipped; fewer
than `MIN_FILES` files is an error.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from seqdb.data.read import write_long
from seqdb.errors import DataError

STDLIB_FILES = (
    "argparse.py", "ast.py", "calendar.py", "configparser.py", "contextlib.py", "csv.py", "dataclasses.py",
    "difflib.py", "enum.py", "fractions.py", "functools.py", "gettext.py", "heapq.py", "inspect.py",
    "ipaddress.py", "optparse.py", "pprint.py", "queue.py", "random.py", "sched.py", "shlex.py", "shutil.py",
    "statistics.py", "string.py", "subprocess.py", "tempfile.py", "textwrap.py", "threading.py",
    "tokenize.py", "traceback.py", "typing.py", "warnings.py",
)
MAX_CHARS = 20_000  # characters kept from the start of each file
MIN_FILES = 8
NAMED = {" ": "space", "\n": "newline", "\t": "tab"}


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def char_category(c: str) -> str:
    """A character's category: printable ASCII as itself, named whitespace, else `other`."""
    if c in NAMED:
        return NAMED[c]
    return c if 33 <= ord(c) <= 126 else "other"


def read_stdlib_texts(files: tuple[str, ...] = STDLIB_FILES, max_chars: int = MAX_CHARS) -> list[tuple[str, str]]:
    """(file name, its first max_chars characters) for each file of the subset found."""
    root = stdlib_dir()
    texts = []
    for name in files:
        path = root / name
        if path.is_file():
            texts.append((name, path.read_text(encoding="utf-8", errors="replace")[:max_chars]))
    if len(texts) < MIN_FILES:
        raise DataError(f"{root}: only {len(texts)} of the {len(files)} standard-library files found; "
                        f"allowed: a Python installation with its Lib folder (at least {MIN_FILES} of them)")
    return texts


def stdlib_frame(files: tuple[str, ...] = STDLIB_FILES, max_chars: int = MAX_CHARS):  # noqa: ANN201 - a polars DataFrame
    """The characters in seqdb's long format (see the module docstring)."""
    import polars as pl

    seq, pos, names, chars = [], [], [], []
    for i, (name, text) in enumerate(read_stdlib_texts(files, max_chars)):
        seq.extend([i] * len(text))
        pos.extend(range(len(text)))
        names.extend([name] * len(text))
        chars.extend(char_category(c) for c in text)
    return pl.DataFrame({"sequenceId": seq, "itemPosition": pos, "file": names, "char": chars},
                        schema={"sequenceId": pl.Int64, "itemPosition": pl.Int64, "file": pl.Utf8, "char": pl.Utf8})


def write_stdlib_text(out: Path | str, *, files: tuple[str, ...] = STDLIB_FILES, max_chars: int = MAX_CHARS):  # noqa: ANN201
    """Write the long-format file atomically (Parquet, or CSV by suffix); returns the frame."""
    out = Path(out)
    frame = stdlib_frame(files, max_chars)
    write_long(frame, out, csv=out.suffix.lower() == ".csv")
    return frame
