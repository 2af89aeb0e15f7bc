"""The one module that talks to a Debian mirror: `Release`, `Packages.xz`, `.deb`s.

Debian 12 packages come from three pockets, as in a stock bookworm
`sources.list`: `bookworm` and `bookworm-updates` on the main mirror and
`bookworm-security` on the security mirror (`<security>/dists/bookworm-security`).
For each pocket the `Release` file is read, the sha256 and size it lists for
the architecture's index (`main/binary-arm64/Packages.xz`; one `Release`
lists every architecture's) are checked against the downloaded index, and
each wanted package's records are taken from it; the highest version across
the pockets wins (dpkg's order, `slimmer.bases.version`). A `.deb` is checked
against the sha256 and size its index record gives before it is used.

What this does not check: the OpenPGP signature of `Release` (`InRelease`,
`Release.gpg`); the standard library cannot verify one. Over plain HTTP the
chain of hashes is therefore only as trustworthy as the network path to the
mirror.

The mirror is `$SLIMMER_DEBIAN_MIRROR` when set, else http://deb.debian.org/debian;
the security mirror is `$SLIMMER_DEBIAN_SECURITY_MIRROR` when set, else the
main mirror's URL with `-security` appended when it ends in `/debian`, else
http://deb.debian.org/debian-security. Downloads are cached on disk (default
`$XDG_CACHE_HOME/slimmer/debs`, else `~/.cache/slimmer/debs`): `.deb`s under
their file name, indexes under `indexes/<sha256>.xz`; a cached file is used
only when its sha256 still matches, so a warm build fetches only the three
`Release` files.
"""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from slimmer.bases.arch import DebianArch
from slimmer.bases.control import PackageRecord, parse_paragraphs, release_files, scan_packages
from slimmer.bases.errors import DebianError
from slimmer.bases.version import compare_versions

ENV_MIRROR = "SLIMMER_DEBIAN_MIRROR"
ENV_SECURITY = "SLIMMER_DEBIAN_SECURITY_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
CODENAME = "bookworm"
TIMEOUT = 60.0
CHUNK = 1 << 20

Opener = Callable[[str], IO[bytes]]
"""Opens a URL for reading (`urllib.request.urlopen`; tests pass a fake)."""


def urlopen(url: str) -> IO[bytes]:
    response: IO[bytes] = urllib.request.urlopen(url, timeout=TIMEOUT)
    return response


@dataclass(frozen=True)
class Pocket:
    """One suite of one mirror: `<base_url>/dists/<suite>/`."""

    suite: str
    base_url: str

    @property
    def dists_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/dists/{self.suite}"


@dataclass(frozen=True)
class Mirror:
    debian: str = DEFAULT_MIRROR
    security: str = DEFAULT_SECURITY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Mirror:
        """The mirror the environment names (see the module docstring)."""
        env = os.environ if env is None else env
        debian = (env.get(ENV_MIRROR) or DEFAULT_MIRROR).rstrip("/")
        guessed = debian + "-security" if debian.endswith("/debian") else DEFAULT_SECURITY
        return cls(debian, (env.get(ENV_SECURITY) or guessed).rstrip("/"))

    @property
    def pockets(self) -> tuple[Pocket, ...]:
        return (
            Pocket(CODENAME, self.debian),
            Pocket(f"{CODENAME}-updates", self.debian),
            Pocket(f"{CODENAME}-security", self.security),
        )


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    root = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "slimmer" / "debs"


# -- the package index ------------------------------------------------------------


def resolve_packages(
    names: Iterable[str],
    arch: DebianArch,
    mirror: Mirror,
    cache_dir: Path,
    opener: Opener = urlopen,
) -> dict[str, PackageRecord]:
    """The newest `arch` (or `all`) record of each package in `names` across the
    mirror's pockets. `DebianError` when a package is in none of them."""
    wanted = sorted(set(names))
    best: dict[str, PackageRecord] = {}
    for pocket in mirror.pockets:
        for record in _pocket_records(pocket, arch, wanted, cache_dir, opener):
            old = best.get(record.name)
            if old is None or compare_versions(record.version, old.version) > 0:
                best[record.name] = record
    missing = [n for n in wanted if n not in best]
    if missing:
        where = ", ".join(p.suite for p in mirror.pockets)
        raise DebianError(
            f"resolving {arch.name} packages: {', '.join(missing)} not found in {where}"
        )
    return best


def _pocket_records(
    pocket: Pocket, arch: DebianArch, wanted: list[str], cache_dir: Path, opener: Opener
) -> list[PackageRecord]:
    release_url = f"{pocket.dists_url}/Release"
    text = fetch_bytes(release_url, opener).decode("utf-8", "replace")
    paragraphs = parse_paragraphs(text, release_url)
    if not paragraphs:
        raise DebianError(f"reading {release_url}: empty")
    release = paragraphs[0]
    if pocket.suite not in (release.get("Codename"), release.get("Suite")):
        got = release.get("Codename") or "no codename"
        raise DebianError(f"reading {release_url}: it describes {got!r}, not {pocket.suite!r}")
    listed = release_files(release, release_url).get(arch.index)
    if listed is None:
        raise DebianError(f"reading {release_url}: {arch.index} is not listed")
    path = cache_dir / "indexes" / f"{listed.sha256}.xz"
    download(f"{pocket.dists_url}/{arch.index}", path, listed.sha256, listed.size, opener)
    try:
        index = lzma.decompress(path.read_bytes()).decode("utf-8", "replace")
    except lzma.LZMAError as exc:
        raise DebianError(f"reading {pocket.dists_url}/{arch.index}: {exc}") from exc
    return list(
        scan_packages(index, wanted, pocket.suite, pocket.base_url, arch.package_architectures)
    )


# -- downloads ------------------------------------------------------------------------


def fetch_deb(record: PackageRecord, cache_dir: Path, opener: Opener = urlopen) -> Path:
    """The `.deb` of `record` in the cache, downloaded first unless a cached copy
    still has the sha256 the index gives."""
    name = record.deb_name
    if not name.endswith(".deb") or name.startswith("."):
        raise DebianError(f"downloading {record.name}: odd file name {name!r}")
    path = cache_dir / name
    download(record.url, path, record.sha256, record.size, opener)
    return path


def fetch_bytes(url: str, opener: Opener = urlopen, limit: int = 64 << 20) -> bytes:
    """The body at `url` (small files only: at most `limit` bytes)."""
    try:
        with opener(url) as response:
            data = response.read(limit + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DebianError(f"downloading {url}: {_cause(exc)}") from exc
    if len(data) > limit:
        raise DebianError(f"downloading {url}: larger than {limit} bytes")
    return data


def download(url: str, dest: Path, sha256: str, size: int, opener: Opener = urlopen) -> None:
    """Make `dest` hold the file at `url` whose sha256 and size are given: keep a
    cached copy that matches, else download to a temporary file beside it, check
    it and move it into place (a failed download never leaves a file at `dest`)."""
    if dest.is_file() and dest.stat().st_size == size and _sha256(dest) == sha256:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            got, digest = _stream(url, out, size, opener)
        if got != size or digest != sha256:
            why = f"{got} bytes, expected {size}" if got != size else "sha256 mismatch"
            raise DebianError(f"verifying {url}: {why}")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _stream(url: str, out: IO[bytes], size: int, opener: Opener) -> tuple[int, str]:
    digest = hashlib.sha256()
    got = 0
    try:
        with opener(url) as response:
            while got <= size and (chunk := response.read(CHUNK)):
                digest.update(chunk)
                out.write(chunk)
                got += len(chunk)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DebianError(f"downloading {url}: {_cause(exc)}") from exc
    return got, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cause(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
