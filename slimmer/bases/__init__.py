"""Distroless-style base images, built here from Debian 12 packages.

`arch` holds what differs between the architectures bases are built for
(amd64, arm64); `debian` is the one module that talks to a Debian mirror
(`Release`, `Packages`, `.deb` downloads, the on-disk cache); `version`
compares Debian versions; `control` reads deb822 text; `debfile` unpacks a
`.deb`; `recipe` says what each flavour holds (pure); `rootfs` assembles the
file tree; `build` writes, loads and tags the image and finds an existing base
of an architecture; `libraries` lists the ELF libraries a base provides.
"""
