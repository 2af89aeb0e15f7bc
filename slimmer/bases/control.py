"""deb822 text: the `Release` file, `Packages` indexes and `control` files.

A paragraph is a run of `Field: value` lines; a line starting with a space or
a tab continues the field before it; paragraphs are separated by blank lines
(Debian Policy 5.1). Field names compare case-insensitively; the text of each
field is kept exactly, so a control paragraph can be written back unchanged.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

from slimmer.bases.errors import DebianError


@dataclass(frozen=True)
class Paragraph:
    """One deb822 paragraph: its fields in order, values without the `Field:` part
    (continuation lines keep their leading space, joined with newlines)."""

    fields: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        key = name.lower()
        return next((v for k, v in self.fields if k.lower() == key), default)

    def text(self) -> str:
        """The paragraph as deb822 text, ending in one newline."""
        return "".join(
            f"{k}:{v}\n" if not v or v.startswith("\n") else f"{k}: {v}\n" for k, v in self.fields
        )


def parse_paragraphs(text: str, where: str) -> list[Paragraph]:
    """Every paragraph of `text`; `where` names the source in error messages."""
    return [_paragraph(block, where) for block in _blocks(text)]


def _blocks(text: str) -> Iterator[list[str]]:
    block: list[str] = []
    for line in text.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _paragraph(lines: list[str], where: str) -> Paragraph:
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[0] in " \t":
            if not fields:
                raise DebianError(f"reading {where}: continuation line before any field")
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name:
            raise DebianError(f"reading {where}: not a 'Field: value' line: {line[:60]!r}")
        fields.append((name, value.strip()))
    return Paragraph(tuple(fields))


# -- Release ------------------------------------------------------------------


@dataclass(frozen=True)
class IndexFile:
    """A file a `Release` lists under `SHA256:`, relative to its `dists/<suite>/`."""

    path: str
    sha256: str
    size: int


def release_files(release: Paragraph, where: str) -> dict[str, IndexFile]:
    """The `SHA256:` list of a `Release` paragraph, by path."""
    out: dict[str, IndexFile] = {}
    for line in release.get("SHA256").splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise DebianError(f"reading {where}: bad SHA256 line {line.strip()[:80]!r}")
        out[parts[2]] = IndexFile(parts[2], parts[0].lower(), int(parts[1]))
    if not out:
        raise DebianError(f"reading {where}: no SHA256 list")
    return out


# -- Packages -----------------------------------------------------------------


@dataclass(frozen=True)
class PackageRecord:
    """One binary package as a `Packages` index lists it. `origin` names the
    pocket it came from ("bookworm-security"); `base_url` is that pocket's
    mirror, which `filename` is relative to."""

    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    depends: tuple[str, ...]
    origin: str
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.filename}"

    @property
    def deb_name(self) -> str:
        """The file name of the `.deb` (the last part of `filename`)."""
        return self.filename.rsplit("/", 1)[-1]


def scan_packages(
    text: str,
    wanted: Iterable[str],
    origin: str,
    base_url: str,
    architectures: Container[str],
) -> Iterator[PackageRecord]:
    """The records of the `wanted` packages in a `Packages` index (every version
    listed whose `Architecture:` is in `architectures`: a `binary-arm64` index
    lists arm64 and all). Only the paragraphs of wanted packages are parsed, so
    a 50 MB index is scanned in well under a second."""
    names = set(wanted)
    for block in text.split("\n\n"):
        block = block.strip("\n")
        first = block.split("\n", 1)[0]
        if not first.startswith("Package:") or first[8:].strip() not in names:
            continue
        para = parse_paragraphs(block, f"{origin} Packages")[0]
        if para.get("Architecture") in architectures:
            yield _record(para, origin, base_url)


def _record(para: Paragraph, origin: str, base_url: str) -> PackageRecord:
    name = para.get("Package")
    missing = [f for f in ("Version", "Filename", "Size", "SHA256") if not para.get(f)]
    if missing or not para.get("Size").isdigit() or len(para.get("SHA256")) != 64:
        why = f"missing {', '.join(missing)}" if missing else "bad Size or SHA256"
        raise DebianError(f"reading the {origin} record of {name}: {why}")
    filename = para.get("Filename")
    if filename.startswith("/") or ".." in filename.split("/"):
        raise DebianError(f"reading the {origin} record of {name}: unsafe Filename {filename!r}")
    return PackageRecord(
        name=name,
        version=para.get("Version"),
        architecture=para.get("Architecture"),
        filename=filename,
        size=int(para.get("Size")),
        sha256=para.get("SHA256").lower(),
        depends=depends_of(para),
        origin=origin,
        base_url=base_url,
    )


def depends_of(para: Paragraph) -> tuple[str, ...]:
    """The packages `Pre-Depends` and `Depends` name, first alternative of each,
    without version or architecture qualifiers, in order."""
    out: list[str] = []
    for field in ("Pre-Depends", "Depends"):
        for clause in para.get(field, "").split(","):
            name = clause.split("|")[0].strip().split("(")[0].split("[")[0].strip()
            name = name.split(":")[0]
            if name and name not in out:
                out.append(name)
    return tuple(out)


def status_text(control: Paragraph) -> str:
    """A `/var/lib/dpkg/status.d/<package>` record: the package's control
    paragraph with `Status: install ok installed` after `Package:`, as distroless
    writes it (scanners such as syft and trivy read these files)."""
    fields = [(k, v) for k, v in control.fields if k.lower() != "status"]
    at = next((i + 1 for i, (k, _) in enumerate(fields) if k.lower() == "package"), 0)
    fields.insert(at, ("Status", "install ok installed"))
    return Paragraph(tuple(fields)).text()
