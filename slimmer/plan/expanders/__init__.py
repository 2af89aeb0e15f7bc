"""Code expanders: what a profile keeps that its data cannot say.

Each expander is a function `(ctx, profile) -> (additions, generated)`
registered in `EXPANDERS` under the name profiles use in `keep.expand`. They read
the image tree (never the host), skip files whose bytes the reader did not keep,
and give every addition a reason naming the file or setting that asked for it.

The families, one module each:

- `system`: glibc's NSS modules (`nss`), locales (`locales`), the app's own
  directories (`app-dirs`), the JVM's home (`jvm-home`), the programs and sourced
  files of shell scripts (`shell-commands`);
- `packages`: trimmed package databases (`dpkg-status`, `apk-installed`);
- `python`: Python imports and distribution metadata (`python-imports`,
  `python-dist-info`), with `python_interp` (the interpreters' sys.path, built-in and
  frozen modules), `python_closure` (the import closure), `python_codecs` (codecs),
  `python_source` (a file's imports, found statically) and `python_imports` (where
  they resolve in the image);
- `node`: Node.js requires and imports (`node-requires`);
- `nginx`: nginx document roots and the files its configuration names (`nginx-roots`),
  with `nginx_conf` (the configuration's directives);
- `ruby`: Ruby requires, gems and encodings (`ruby-requires`), with
  `ruby_source`, `ruby_gems` and `ruby_encodings`; `php` and `perl`: their
  extensions, includes and `use`s (`php-modules`, `perl-modules`), sharing `_requires`,
  Perl with `perl_encodings` (the `Encode` modules an encoding's name loads) and
  `perl_encode_aliases` (`Encode::Alias`'s rules);
- `helper_programs`: programs runtimes and libraries run by name (`helper-programs`);
- `spawned_programs`: programs kept code runs by a literal name (`spawned-programs`),
  with `spawn_calls` (each language's spawning calls, found statically).

Shared helpers live in `_common`.
"""

from __future__ import annotations

from slimmer.plan.expanders import (
    helper_programs,
    nginx,
    node,
    packages,
    perl,
    php,
    python,
    ruby,
    spawned_programs,
    system,
)
from slimmer.plan.keep import Expander

EXPANDERS: dict[str, Expander] = {
    "nss": system.nss_modules,
    "locales": system.locales,
    "app-dirs": system.app_dirs,
    "jvm-home": system.jvm_home,
    "dpkg-status": packages.dpkg_status,
    "apk-installed": packages.apk_installed,
    "python-imports": python.python_imports,
    "python-dist-info": python.python_dist_info,
    "node-requires": node.node_requires,
    "nginx-roots": nginx.nginx_roots,
    "shell-commands": system.shell_commands,
    "helper-programs": helper_programs.helper_programs,
    "spawned-programs": spawned_programs.spawned_programs,
    "ruby-requires": ruby.ruby_requires,
    "php-modules": php.php_modules,
    "perl-modules": perl.perl_modules,
}
