"""Evaluation text: Jane Austen's novels (public domain), read without R, or any text file.

The novels come from Debian's ``r-cran-janeaustenr`` 1.0.0 package, which needs no model hub::

    apt-get download r-cran-janeaustenr
    dpkg-deb -x r-cran-janeaustenr_*.deb data/janeausten

(``make data`` does exactly this). The text sits in ``data/Rdata.rdb``/``Rdata.rdx``, R's
lazy-load database: the ``.rdx`` index is a gzip-compressed R serialization of a list whose
``variables`` entry maps each object name to ``(offset, length)`` in the ``.rdb``; each
``.rdb`` record is a 4-byte big-endian length followed by a zlib stream holding the XDR
serialization of one object, here a character vector (one element per line of the novel).
:func:`read_rdata` parses that format in pure Python.

Quality runs calibrate on one novel and evaluate on another (:data:`EVAL_BOOK`,
:data:`CALIB_BOOK`), never the same text.

Command line (regenerates ``data/janeausten``)::

    python -m golden.llm.corpus --fetch
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

__all__ = [
    "BOOKS",
    "EVAL_BOOK",
    "CALIB_BOOK",
    "CorpusUnavailable",
    "data_dir",
    "fetch",
    "read_rdata",
    "austen_books",
    "load_text",
]

#: object name in the R package -> title
BOOKS: dict[str, str] = {
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
EVAL_BOOK = "persuasion"
CALIB_BOOK = "northangerabbey"

_DEB = "r-cran-janeaustenr"
_RDATA = Path("usr/lib/R/site-library/janeaustenr/data/Rdata")


class CorpusUnavailable(FileNotFoundError):
    """The Austen corpus is not on disk and cannot be fetched here (message says why)."""


def data_dir() -> Path:
    """Where the extracted package lives.

    ``$NMSPARSE_DATA/janeausten`` if set, else ``<repository>/data/janeausten``.
    """
    root = os.environ.get("NMSPARSE_DATA")
    if root:
        return Path(root) / "janeausten"
    return Path(__file__).resolve().parents[2] / "data" / "janeausten"


# --------------------------------------------------------------------------------------------
# R serialization (XDR, versions 2 and 3): the subset that data objects use
# --------------------------------------------------------------------------------------------

_NILVALUE, _REF, _GLOBALENV, _EMPTYENV, _BASEENV = 254, 255, 253, 242, 241
_SPECIAL_NULLS = {252, 251, 250, 249, 248, 247}  # unbound, missing arg, namespaces, ...
_ALTREP = 238
_ATTRLANG, _ATTRLIST = 240, 239


class RObject:
    """A parsed R value that has attributes (``value`` plus ``attributes`` dict)."""

    def __init__(self, value: Any, attributes: dict[str, Any]):
        self.value = value
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"RObject({self.value!r:.60}, attributes={list(self.attributes)})"


class _Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.p = 0
        self.refs: list[Any] = []

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.d):
            raise ValueError("truncated R serialization")
        b = self.d[self.p : self.p + n]
        self.p += n
        return b

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) | (lo & 0xFFFFFFFF)
        return n

    def header(self) -> None:
        fmt = self.take(2)
        if fmt != b"X\n":
            raise ValueError(f"unsupported R serialization format {fmt!r} (only XDR 'X')")
        version = self.int()
        self.int(), self.int()  # writer version, minimal reader version
        if version == 3:
            self.take(self.int())  # native encoding name
        elif version != 2:
            raise ValueError(f"unsupported R serialization version {version}")

    def attrs(self, has_attr: bool) -> dict[str, Any]:
        if not has_attr:
            return {}
        a = self.item()
        return a if isinstance(a, dict) else {}

    def item(self) -> Any:
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t == _NILVALUE or t in _SPECIAL_NULLS or t in (_GLOBALENV, _EMPTYENV, _BASEENV):
            return None
        if t == _REF:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            sym = self.item()
            self.refs.append(sym)
            return sym
        if t in (2, 6, _ATTRLANG, _ATTRLIST, 17):  # pairlist-like -> dict (tag: value)
            out: dict[str, Any] = {}
            i = 0
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out[tag if isinstance(tag, str) else str(i)] = self.item()
                i += 1
                flags = self.int()
                t = flags & 0xFF
                if t == _NILVALUE:
                    return out
                if t not in (2, 6, _ATTRLANG, _ATTRLIST, 17):
                    raise ValueError(f"unsupported pairlist tail of R type {t}")
                has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t == 4:  # ENVSXP
            env: dict[str, Any] = {}
            self.refs.append(env)
            self.int()  # locked
            self.item()  # enclosure
            frame = self.item()
            hashtab = self.item()
            self.item()  # attributes
            for part in (frame, hashtab):
                if isinstance(part, dict):
                    env.update(part)
                elif isinstance(part, list):
                    for e in part:
                        if isinstance(e, dict):
                            env.update(e)
            return env
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.take(n)
            enc = "latin-1" if flags & (1 << 2 << 12) else "utf-8"
            return raw.decode(enc, errors="replace")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            vals = list(struct.unpack(f">{n}i", self.take(4 * n)))
            vals = [None if v == -(2**31) else v for v in vals]
            return self._wrap(vals, has_attr)
        if t == 14:  # REALSXP
            n = self.length()
            return self._wrap(list(struct.unpack(f">{n}d", self.take(8 * n))), has_attr)
        if t == 16:  # STRSXP
            n = self.length()
            return self._wrap([self.item() for _ in range(n)], has_attr)
        if t in (19, 20):  # VECSXP, EXPRSXP
            n = self.length()
            return self._wrap([self.item() for _ in range(n)], has_attr)
        if t == 24:  # RAWSXP
            n = self.length()
            return self._wrap(self.take(n), has_attr)
        if t == _ALTREP:
            info = self.item()
            state = self.item()
            attr = self.item()
            cls = next(iter(info.values())) if isinstance(info, dict) and info else None
            if cls in ("compact_intseq", "compact_realseq") and isinstance(state, list):
                n, start, step = (int(v) if cls == "compact_intseq" else v for v in state[:3])
                vals = [start + i * step for i in range(int(n))]
            elif isinstance(state, dict):  # wrapper: (payload, metadata)
                vals = next(iter(state.values()))
            else:
                vals = state
            return RObject(vals, attr) if isinstance(attr, dict) and attr else vals
        raise ValueError(f"unsupported R object type {t} in the serialization")

    def _wrap(self, value: Any, has_attr: bool) -> Any:
        a = self.attrs(has_attr)
        return RObject(value, a) if a else value


def unserialize(data: bytes) -> Any:
    """Parse one R XDR serialization (``serialize(x, NULL)``) into Python values.

    Character, integer, logical and double vectors become lists (``None`` for NA), lists
    become lists, pairlists become dicts; values with attributes become :class:`RObject`.
    """
    r = _Reader(data)
    r.header()
    return r.item()


def read_rdata(base: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an R lazy-load database ``<base>.rdx`` + ``<base>.rdb`` into ``{name: value}``.

    Raises
    ------
    FileNotFoundError
        One of the two files is missing.
    ValueError
        The files are not an R lazy-load database this reader understands.
    """
    base = Path(base)
    rdx, rdb = base.with_suffix(".rdx"), base.with_suffix(".rdb")
    raw = rdx.read_bytes()
    index = unserialize(
        gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else zlib.decompress(raw[4:])
    )
    # the index is list(variables=, references=, compressed=); find 'variables'
    try:
        variables = _named(index)["variables"]
    except (KeyError, ValueError):
        raise ValueError(f"{rdx} is not an R lazy-load index (no 'variables')") from None
    blob = rdb.read_bytes()
    out: dict[str, Any] = {}
    for name, loc in _named(variables).items():
        loc = loc.value if isinstance(loc, RObject) else loc
        off, n = int(loc[0]), int(loc[1])
        rec = blob[off : off + n]
        ulen = struct.unpack(">I", rec[:4])[0]
        body = rec[4:]
        if body[:1] in (b"Z", b"2", b"X", b"0") and not body.startswith(b"x"):
            kind, body = body[:1], body[1:]
            if kind == b"2":
                import bz2

                payload = bz2.decompress(body)
            elif kind == b"X":
                import lzma

                payload = lzma.decompress(body)
            elif kind == b"Z":
                payload = zlib.decompress(body)
            else:
                payload = body
        else:
            payload = zlib.decompress(body)
        if len(payload) != ulen:
            raise ValueError(f"{rdb}: record {name!r} has {len(payload)} bytes, expected {ulen}")
        out[name] = unserialize(payload)
    return out


def _named(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, RObject) and "names" in obj.attributes:
        return dict(zip(obj.attributes["names"], obj.value, strict=True))
    raise ValueError("expected a named R list")


# --------------------------------------------------------------------------------------------
# fetching and the public text API
# --------------------------------------------------------------------------------------------


def fetch(dest: str | os.PathLike[str] | None = None, *, quiet: bool = False) -> Path:
    """Download ``r-cran-janeaustenr`` with apt and extract it into ``dest`` (default
    :func:`data_dir`). Returns ``dest``.

    Raises
    ------
    CorpusUnavailable
        ``apt-get`` or ``dpkg-deb`` is not available, or the download failed; the message says
        how to get the text another way (``--text FILE``).
    """
    dest = Path(dest) if dest is not None else data_dir()
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise CorpusUnavailable(
                f"the Jane Austen corpus comes from the Debian package {_DEB}, but `{tool}` is "
                f"not available on this machine; copy an extracted {_DEB} into {dest}, or "
                f"pass --text FILE with any plain-text file"
            )
    with tempfile.TemporaryDirectory() as tmp:

        def download() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["apt-get", "download", _DEB], cwd=tmp, capture_output=True, text=True
            )

        r = download()
        if r.returncode != 0:
            # the package lists may be missing (fresh container): refresh them once
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            r = download()
        debs = sorted(Path(tmp).glob(f"{_DEB}_*.deb"))
        if r.returncode != 0 or not debs:
            raise CorpusUnavailable(
                f"`apt-get download {_DEB}` failed ({r.stderr.strip().splitlines()[-1:] or '?'}); "
                f"pass --text FILE with any plain-text file instead"
            )
        staging = Path(tempfile.mkdtemp(prefix="janeausten-", dir=tmp))
        x = subprocess.run(
            ["dpkg-deb", "-x", str(debs[-1]), str(staging)], capture_output=True, text=True
        )
        if x.returncode != 0:
            raise CorpusUnavailable(f"dpkg-deb -x {debs[-1].name} failed: {x.stderr.strip()}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging), str(dest))
    if not quiet:
        print(f"nmsparse: extracted {debs[-1].name} into {dest}")
    return dest


def austen_books(
    root: str | os.PathLike[str] | None = None, *, download: bool = True
) -> dict[str, str]:
    """All six novels as ``{object name: text}`` (lines joined with newlines).

    Parameters
    ----------
    root : path, optional
        The extracted package (default :func:`data_dir`).
    download : bool
        Fetch the package with apt when it is not on disk yet.

    Raises
    ------
    CorpusUnavailable
        Not on disk and cannot be fetched.
    """
    root = Path(root) if root is not None else data_dir()
    base = root / _RDATA
    if not base.with_suffix(".rdb").is_file():
        if not download:
            raise CorpusUnavailable(
                f"the Jane Austen corpus is not in {root}; run `make data` "
                f"(apt-get download {_DEB}) or pass --text FILE"
            )
        fetch(root, quiet=True)
    objs = read_rdata(base)
    out = {}
    for name in BOOKS:
        if name not in objs:
            raise ValueError(f"{base}.rdb has no object {name!r}; found {sorted(objs)}")
        lines = objs[name].value if isinstance(objs[name], RObject) else objs[name]
        out[name] = "\n".join(line or "" for line in lines)
    return out


def load_text(
    source: str | os.PathLike[str] = EVAL_BOOK, *, download: bool = True
) -> tuple[str, str]:
    """Text to evaluate or calibrate on: an Austen novel by object name, or a file path.

    Parameters
    ----------
    source : str or path
        One of :data:`BOOKS` (``"persuasion"``, ...) or a path to a UTF-8 text file.

    Returns
    -------
    (text, label)
        The text and a short label for reports (``"austen:persuasion"`` or the file name).

    Raises
    ------
    ValueError
        ``source`` is neither a book name nor an existing file.
    CorpusUnavailable
        The corpus is needed but cannot be fetched.
    """
    name = os.fspath(source)
    if name in BOOKS:
        return austen_books(download=download)[name], f"austen:{name}"
    path = Path(name).expanduser()
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            raise ValueError(f"text file {name!r} is empty")
        return text, path.name
    raise ValueError(
        f"text source {name!r} is neither an Austen book ({', '.join(BOOKS)}) nor an existing file"
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m golden.llm.corpus",
                                description=__doc__.split("\n")[0])
    p.add_argument("--fetch", action="store_true", help="download and extract the package")
    p.add_argument("--dest", default=None, help=f"target directory (default {data_dir()})")
    args = p.parse_args(argv)
    dest = Path(args.dest) if args.dest else data_dir()
    try:
        if args.fetch or not (dest / _RDATA).with_suffix(".rdb").is_file():
            fetch(dest)
        books = austen_books(dest, download=False)
    except CorpusUnavailable as exc:
        print(f"nmsparse: {exc}")
        return 1
    for name, text in books.items():
        print(f"{name:18s} {len(text):9d} characters  {BOOKS[name]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
