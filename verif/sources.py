"""What Verilator reads to build a module: files, include directories, defines.

Three places can say it, merged in this order (later defines win)::

    sidecar "sources" block  ─┐   (or <sidecar stem>.v / .sv alone)
    FuseSoC .core (--core)   ─┼──> BuildSources(top, files, include_dirs, defines)
    --source / -I / -D flags ─┘              │
                                             v
                             verilator ... -I<dir> -D<name>=<value> <files>
                                             │ after the build
                                             v
                      V<prefix>__ver.d: every file Verilator actually read

A `.core` file's own files replace the sidecar's file list (the core is the list of the
design); include directories and defines add up. Every path is absolute once it is here:
sidecar paths are relative to the sidecar, flag paths to the caller's directory.

The dependency list after the build is what the build stamp hashes (:mod:`verif.runner`): a
file pulled in by `` `include`` or found by Verilator's module search in an include directory
is covered although no one listed it. The trade-off: the list is only known after a build, so
the build directory is named by the declared inputs and a changed dependency rebuilds in
place instead of in a new directory. Files the design opens while it simulates
(``$readmemh``) are not in Verilator's list; they need no rebuild either, since every
simulation reads them afresh.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar

__all__ = ["BuildSources", "CoreFile", "read_core", "parse_define", "sources_for",
           "read_dependencies", "file_hashes"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# FuseSoC file types Verilator compiles (a version suffix such as -2005 may follow)
_HDL_TYPES = ("verilogSource", "systemVerilogSource")


def parse_define(text: str) -> tuple[str, str | None]:
    """``"NAME=VALUE"`` -> ``("NAME", "VALUE")``; ``"NAME"`` -> ``("NAME", None)``.

    Raises
    ------
    ValueError
        NAME is not a Verilog identifier.
    """
    name, eq, value = text.partition("=")
    if not _IDENT.match(name):
        raise ValueError(f"define {text!r}: {name!r} is not a Verilog identifier "
                         "(use NAME or NAME=VALUE)")
    return name, (value if eq else None)


@dataclass(frozen=True)
class BuildSources:
    """Everything one Verilator build reads, with absolute paths.

    Members
    -------
    top : str
        The top-level module.
    files : tuple of Path
        Verilog/SystemVerilog files in compile order.
    include_dirs : tuple of Path
    defines : tuple of (name, value or None)
    """

    top: str
    files: tuple[Path, ...]
    include_dirs: tuple[Path, ...] = ()
    defines: tuple[tuple[str, str | None], ...] = ()

    def define_args(self) -> list[str]:
        """Verilator ``-D`` options (``-DNAME`` for a define without a value)."""
        return [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in self.defines]

    def args(self) -> list[str]:
        """Verilator options and file names, after the fixed build options."""
        return (self.define_args() + [f"-I{d}" for d in self.include_dirs]
                + [str(f) for f in self.files])

    def key(self) -> str:
        """The declared inputs (paths, not contents) as text, for the build directory name."""
        return "\n".join([self.top, *map(str, self.files), "-I", *map(str, self.include_dirs),
                          "-D", *(f"{k}={v}" for k, v in self.defines)])

    def check(self) -> None:
        """Raise ``FileNotFoundError`` naming a missing file or include directory."""
        for f in self.files:
            if not f.is_file():
                raise FileNotFoundError(f"source file {f} of {self.top} does not exist")
        for d in self.include_dirs:
            if not d.is_dir():
                raise FileNotFoundError(f"include directory {d} of {self.top} does not exist")


@dataclass(frozen=True)
class CoreFile:
    """What nmsparse reads of a FuseSoC CAPI2 ``.core`` file (one target).

    Members
    -------
    path : Path
    target : str
    toplevel : str
    files : tuple of Path
        The target's Verilog/SystemVerilog files (include files not listed as sources).
    include_dirs : tuple of Path
        Directories of the files marked ``is_include_file`` (or their ``include_path``).
    defines : tuple of (name, value or None)
        Parameters of ``paramtype: vlogdefine`` at their defaults.
    notes : tuple of str
        What was not used (dependencies on other cores, Verilog parameters, ...).
    """

    path: Path
    target: str
    toplevel: str
    files: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    defines: tuple[tuple[str, str | None], ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _flag_on(expr: str, target: str) -> bool:
    flags = {"tool_verilator", "simulation", f"target_{target}"}
    neg = expr.startswith("!")
    return (expr.lstrip("!") in flags) != neg


def _conditional(items: Iterable[object], target: str) -> list[str]:
    """Names from a CAPI2 list whose entries may be ``"flag? (name)"``."""
    out = []
    for it in items or ():
        s = str(it).strip()
        m = re.fullmatch(r"(!?[\w-]+)\s*\?\s*\((.*)\)", s)
        if m:
            if _flag_on(m.group(1), target):
                out += _conditional(m.group(2).split(), target)
        else:
            out.append(s)
    return out


def read_core(path: str | Path, target: str | None = None) -> CoreFile:
    """Read a FuseSoC CAPI2 core: the target's toplevel, files, include dirs and defines.

    Only the core's own filesets are read: dependencies on other cores (``depend``) are
    listed in :attr:`CoreFile.notes` (add their files with ``--source``).

    Raises
    ------
    FileNotFoundError
        The core file does not exist.
    ValueError
        It is not CAPI2 YAML, has no such target, or the target names no toplevel.
    """
    import yaml

    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"FuseSoC core {path} does not exist")
    text = p.read_text()
    if not text.lstrip().startswith("CAPI=2"):
        raise ValueError(f"{path}: not a FuseSoC CAPI2 core (the first line must be CAPI=2:)")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: expected a CAPI2 mapping")
    targets = doc.get("targets") or {}
    if not isinstance(targets, Mapping) or not targets:
        raise ValueError(f"{path}: no targets (CAPI2 needs targets: default: ...)")
    name = target or ("default" if "default" in targets else next(iter(targets)))
    if name not in targets:
        raise ValueError(f"{path}: no target {name!r}; it has: {', '.join(targets)}")
    tgt = targets[name] or {}
    top = tgt.get("toplevel")
    if isinstance(top, list):
        top = top[0] if len(top) == 1 else None
    if not isinstance(top, str) or not top:
        raise ValueError(f"{path}: target {name!r} names no single toplevel module")
    filesets = doc.get("filesets") or {}
    files: list[Path] = []
    incdirs: list[Path] = []
    notes: list[str] = []
    for fs_name in _conditional(tgt.get("filesets", ()), name):
        fs = filesets.get(fs_name)
        if fs is None:
            raise ValueError(f"{path}: target {name!r} uses fileset {fs_name!r}, which is not "
                             f"defined; it has: {', '.join(filesets)}")
        if fs.get("depend"):
            notes.append(f"fileset {fs_name} depends on other cores "
                         f"({', '.join(map(str, fs['depend']))}): their files are not read; "
                         "add them with --source")
        fs_type = str(fs.get("file_type", ""))
        for entry in fs.get("files") or ():
            if isinstance(entry, Mapping):
                (fname, attrs), = entry.items()
            else:
                fname, attrs = entry, {}
            attrs = attrs or {}
            fname = str(fname)
            m = re.fullmatch(r"(!?[\w-]+)\s*\?\s*\((.*)\)", fname)
            if m:
                if not _flag_on(m.group(1), name):
                    continue
                fname = m.group(2).strip()
            fpath = (p.parent / fname).resolve()
            ftype = str(attrs.get("file_type", fs_type))
            if attrs.get("is_include_file"):
                inc = attrs.get("include_path")
                d = (p.parent / inc).resolve() if inc else fpath.parent
                if d not in incdirs:
                    incdirs.append(d)
            elif ftype.startswith(_HDL_TYPES):
                files.append(fpath)
            elif ftype:
                notes.append(f"{fname} ({ftype}) is not Verilog: not read")
    defines: list[tuple[str, str | None]] = []
    params = doc.get("parameters") or {}
    for pname in _conditional(tgt.get("parameters", ()), name):
        pname, _, override = pname.partition("=")
        spec = params.get(pname) or {}
        if spec.get("paramtype") == "vlogdefine":
            value = override or spec.get("default")
            if isinstance(value, bool):
                value = int(value)
            defines.append((pname, None if value is None else str(value)))
        else:
            notes.append(f"parameter {pname} ({spec.get('paramtype', 'no paramtype')}) is "
                         "not passed: only vlogdefine parameters become defines")
    if not files:
        raise ValueError(f"{path}: target {name!r} has no verilogSource or "
                         "systemVerilogSource files")
    return CoreFile(path=p, target=name, toplevel=top, files=tuple(files),
                    include_dirs=tuple(incdirs), defines=tuple(defines), notes=tuple(notes))


def sources_for(sc: Sidecar, *, core: CoreFile | None = None, files: Sequence[Path] = (),
                include_dirs: Sequence[Path] = (), defines: Sequence[str] = ()
                ) -> BuildSources:
    """The merged sources of ``sc`` (see the module docstring); paths made absolute.

    Raises
    ------
    ValueError
        The core's toplevel is not the sidecar's module, or a define is malformed.
    """
    if core is not None and core.toplevel != sc.module:
        raise ValueError(f"{core.path}: target {core.target!r} has toplevel {core.toplevel!r} "
                         f"but the sidecar {sc.path} describes module {sc.module!r}")
    base = list(core.files) if core is not None else sc.hdl_files
    all_files: list[Path] = []
    for f in [*base, *files]:
        f = Path(f).resolve()
        if f not in all_files:
            all_files.append(f)
    dirs: list[Path] = []
    for d in [*sc.include_dirs, *(core.include_dirs if core else ()), *include_dirs]:
        d = Path(d).resolve()
        if d not in dirs:
            dirs.append(d)
    merged: dict[str, str | None] = dict(sc.defines)
    if core is not None:
        merged.update(dict(core.defines))
    for text in defines:
        k, v = parse_define(text)
        merged[k] = v
    return BuildSources(top=sc.module, files=tuple(all_files), include_dirs=tuple(dirs),
                        defines=tuple(merged.items()))


def _split_make_words(text: str) -> list[str]:
    """Words of a make rule, honouring backslash-escaped spaces."""
    words, cur, i = [], "", 0
    text = text.replace("\\\n", " ")
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in " #":
            cur += text[i + 1]
            i += 2
            continue
        if c.isspace():
            if cur:
                words.append(cur)
                cur = ""
        else:
            cur += c
        i += 1
    if cur:
        words.append(cur)
    return words


def read_dependencies(build_dir: Path, prefix: str = "Vtop",
                      exclude: Sequence[Path] = ()) -> list[Path]:
    """Every input file of the Verilator run in ``build_dir``, from ``<prefix>__ver.d``.

    Files under ``exclude`` (Verilator's own installation, the build directory) are left
    out. Relative names are relative to ``build_dir`` (where the build ran).

    Raises
    ------
    FileNotFoundError
        Verilator wrote no dependency file (it was run without ``--MMD``).
    """
    dep = build_dir / f"{prefix}__ver.d"
    if not dep.is_file():
        raise FileNotFoundError(f"{dep} does not exist: Verilator did not write its "
                                "dependency list")
    text = dep.read_text()
    _, sep, deps = text.partition(" : ")
    if not sep:
        _, _, deps = text.partition(":")
    skip = [Path(e).resolve() for e in exclude]
    out: list[Path] = []
    for w in _split_make_words(deps):
        p = Path(w)
        p = (p if p.is_absolute() else build_dir / p).resolve()
        if any(p == s or s in p.parents for s in skip) or p in out:
            continue
        out.append(p)
    return out


def file_hashes(paths: Iterable[Path]) -> dict[str, str]:
    """``{path: sha256 of its bytes}``; a missing file hashes to ``"missing"``."""
    out = {}
    for p in paths:
        try:
            out[str(p)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        except OSError:
            out[str(p)] = "missing"
    return out
