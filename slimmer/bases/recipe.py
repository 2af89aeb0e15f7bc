"""What each base flavour holds, after Google's distroless Debian 12 images. Pure.

The flavours and their packages (GoogleContainerTools/distroless:
`static/config.bzl`, `base/config.bzl`, `cc/config.bzl`, `common/BUILD.bazel`):

- `static`: base-files, netbase, tzdata, media-types; the CA bundle built from
  ca-certificates; `/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf`,
  `/usr/lib/os-release`, `/tmp` (1777), `/root` (0700), `/home` (0755),
  `/home/nonroot` (0700, 65532:65532).
- `base-nossl`: static + libc6.
- `base`: base-nossl + libssl3.
- `cc`: base + libgcc-s1, libgomp1, libstdc++6 and gcc-12-base (the package
  that owns their shared `/usr/share/doc/gcc-12-base`, which distroless adds too).

As in distroless, ca-certificates is not installed: only the bundle
`/etc/ssl/certs/ca-certificates.crt` (every `/usr/share/ca-certificates/mozilla/*.crt`,
in byte order of their names, each ending in a newline: what
update-ca-certificates writes with every certificate enabled) and the
package's copyright file go in, and it gets no `status.d` record.
Each installed package gets `/var/lib/dpkg/status.d/<name>` (its control
paragraph with `Status: install ok installed`) and `<name>.md5sums`, as
distroless writes them, so syft and trivy see the packages.

Maintainer scripts are never run (no dpkg in the image), and dependencies are
not resolved: the lists are fixed, like distroless's. `missing_depends` checks
that each installed package's `Pre-Depends` and `Depends` (first alternative)
are installed too or listed in `IGNORED_DEPENDS` with the reason.

Dropped from every package (distroless itself ships each package's data.tar
whole; slimmer drops what no program reads at run time): everything under
`/usr/share/doc` except the `/usr/share/doc/<package>` entries themselves and
their `copyright` files; `/usr/share/man`, `/usr/share/info` and
`/usr/share/lintian` (lintian overrides) with everything below them. The
md5sums records list only the files that are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slimmer.errors import UsageError
from slimmer.image.paths import DEFAULT_PATH

DEBIAN_VERSION = "12"
CODENAME = "bookworm"
ROOT, NOBODY, NONROOT = 0, 65534, 65532


@dataclass(frozen=True)
class Flavour:
    """A base flavour: the packages it adds to its parent's."""

    name: str
    adds: tuple[str, ...]
    parent: str | None
    summary: str


FLAVOURS: Mapping[str, Flavour] = {
    f.name: f
    for f in (
        Flavour(
            "static",
            ("base-files", "netbase", "tzdata", "media-types"),
            None,
            "users, CA certificates, time zones; no libc (static binaries)",
        ),
        Flavour("base-nossl", ("libc6",), "static", "static + glibc"),
        Flavour("base", ("libssl3",), "base-nossl", "base-nossl + OpenSSL 3"),
        Flavour(
            "cc",
            ("libgcc-s1", "gcc-12-base", "libgomp1", "libstdc++6"),
            "base",
            "base + the C++ runtime",
        ),
    )
}
CA_PACKAGE = "ca-certificates"

IGNORED_DEPENDS: Mapping[str, str] = {
    "awk": "base-files pre-depends on it for its maintainer scripts, which never run",
    "debconf": "tzdata asks its questions through debconf in maintainer scripts",
    "libgcc-s1": (
        "libc6 dlopens libgcc_s only for pthread_cancel and backtraces; distroless"
        " base and base-nossl ship without it, cc adds it"
    ),
}

ENV = (
    f"PATH={DEFAULT_PATH}",
    # distroless sets it so OpenSSL finds the bundle without update-ca-certificates.
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
)


def flavour(name: str) -> Flavour:
    """The flavour called `name`; `UsageError` naming the known ones otherwise."""
    if name not in FLAVOURS:
        raise UsageError(f"base flavour {name!r}: unknown; known: {', '.join(FLAVOURS)}")
    return FLAVOURS[name]


def packages_of(name: str) -> tuple[str, ...]:
    """Every package installed in flavour `name`, its parents' first."""
    spec = flavour(name)
    inherited = packages_of(spec.parent) if spec.parent else ()
    return inherited + spec.adds


def downloads_of(name: str) -> tuple[str, ...]:
    """Every package whose `.deb` a build of `name` reads (installed + CA source)."""
    return (*packages_of(name), CA_PACKAGE)


def missing_depends(name: str, depends: Mapping[str, Iterable[str]]) -> list[str]:
    """ "PKG needs DEP" for each dependency of an installed package of flavour
    `name` (`depends`: package -> its first-alternative dependencies) that is
    neither installed in the flavour nor in `IGNORED_DEPENDS`."""
    installed = set(packages_of(name))
    return [
        f"{pkg} needs {dep}"
        for pkg in packages_of(name)
        for dep in depends.get(pkg, ())
        if dep not in installed and dep not in IGNORED_DEPENDS
    ]


# -- what is dropped -----------------------------------------------------------

DOC = "/usr/share/doc"
DROPPED_TREES = ("/usr/share/man", "/usr/share/info", "/usr/share/lintian")


def is_dropped(path: str) -> bool:
    """True for a package path that does not go into a base (module docstring)."""
    if any(path == d or path.startswith(d + "/") for d in DROPPED_TREES):
        return True
    if not path.startswith(DOC + "/"):
        return False
    parts = path[len(DOC) + 1 :].split("/")
    return not (len(parts) == 1 or (len(parts) == 2 and parts[1] == "copyright"))


# -- the CA bundle ---------------------------------------------------------------

CA_SOURCE_DIR = "/usr/share/ca-certificates/mozilla"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_COPYRIGHT = f"{DOC}/{CA_PACKAGE}/copyright"
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def is_ca_source(path: str) -> bool:
    """The ca-certificates paths a build reads: the Mozilla certificates and the
    copyright file."""
    return path == CA_COPYRIGHT or (
        path.startswith(CA_SOURCE_DIR + "/") and path.endswith(".crt") and path.count("/") == 5
    )


def ca_bundle(certs: Iterable[tuple[str, bytes]]) -> bytes:
    """The bundle update-ca-certificates writes: each certificate (path, PEM
    bytes) in byte order of its path, each ending in a newline. `ValueError` for
    a certificate that is not PEM, or for none at all."""
    out = []
    for path, data in sorted(certs, key=lambda c: c[0].encode("utf-8", "surrogateescape")):
        if PEM_BEGIN not in data:
            raise ValueError(f"{path} is not a PEM certificate")
        out.append(data if data.endswith(b"\n") else data + b"\n")
    if not out:
        raise ValueError(f"no certificates under {CA_SOURCE_DIR}")
    return b"".join(out)


# -- generated files and directories --------------------------------------------


@dataclass(frozen=True)
class RecipeEntry:
    """A file (`data` set) or directory (`data` None) the recipe writes itself."""

    path: str
    data: bytes | None
    mode: int
    mtime: int = 0
    uid: int = 0
    gid: int = 0


NSSWITCH_MTIME = 1514722362  # distroless's nsswitch.tar
TMP_MTIME = 1501783453  # distroless's tmp.tar

PASSWD = (
    f"root:x:{ROOT}:{ROOT}:root:/root:/sbin/nologin\n"
    f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:{ROOT}:\nnobody:x:{NOBODY}:\ntty:x:5:\nstaff:x:50:\nnonroot:x:{NONROOT}:\n"
# glibc's lookups without NIS or systemd modules: local files, then DNS for hosts.
NSSWITCH = """\
# /etc/nsswitch.conf: name service sources (glibc), as distroless sets them.
passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
"""
# distroless's os-release keys, without its project URLs (this is not its build).
OS_RELEASE = (
    'PRETTY_NAME="Distroless"\n'
    'NAME="Debian GNU/Linux"\n'
    'ID="debian"\n'
    f'VERSION_ID="{DEBIAN_VERSION}"\n'
    f'VERSION="Debian GNU/Linux {DEBIAN_VERSION} ({CODENAME})"\n'
)


def generated() -> tuple[RecipeEntry, ...]:
    """The files and directories every flavour gets on top of its packages."""
    return (
        RecipeEntry("/etc/passwd", PASSWD.encode(), 0o644),
        RecipeEntry("/etc/group", GROUP.encode(), 0o644),
        RecipeEntry("/etc/nsswitch.conf", NSSWITCH.encode(), 0o644, NSSWITCH_MTIME),
        RecipeEntry("/usr/lib/os-release", OS_RELEASE.encode(), 0o644),
        RecipeEntry("/tmp", None, 0o1777, TMP_MTIME),
        RecipeEntry("/root", None, 0o700),
        RecipeEntry("/home", None, 0o755),
        RecipeEntry("/home/nonroot", None, 0o700, 0, NONROOT, NONROOT),
    )
