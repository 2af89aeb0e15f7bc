"""Profiles: what a runtime loads on paths no probe took, read from `profiles/*.toml`.

A profile says *when* it applies (any-of conditions over the traced, executed
and kept paths, the image's files, its Env and the functions kept ELF files
import) and what it then *keeps*
(globs of image paths, and code expanders for what data cannot say). The
format is documented in `profiles/README.md`; `load_profiles` validates it and
a bad file is a `UsageError` naming the file, the key and the value.

`apply_profiles` is called by the planner once per pass with the keep set so
far; it is pure apart from reading the image tree, and remembers per tree what
does not change between passes (glob matches, parsed files).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from slimmer.elf.imports import imports_in_tree
from slimmer.errors import UsageError
from slimmer.image.paths import Glob, PathIndex, compile_glob, expand
from slimmer.plan.expanders import EXPANDERS
from slimmer.plan.keep import Addition, GeneratedFile, ProfileContext, ProfilesFn, Reason
from slimmer.plan.runs import by_real_path, locale_matches, ran_without
from slimmer.resources import builtin_profiles

ENV_DIR = "SLIMMER_PROFILES"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_WHEN_GLOBS = ("traced", "executed", "kept", "present")
_IMPORT_KEYS = ("imports_except", "imports_ran_without", "imports_ran_locale")
_WHEN_KEYS = frozenset({"always", "env", "imports", *_IMPORT_KEYS, *_WHEN_GLOBS})
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.$]*$")
_KEEP_KEYS = frozenset({"paths", "closure", "expand", "reason"})
_TOP_KEYS = frozenset({"name", "description", "when", "keep", "rule"})


@dataclass(frozen=True)
class When:
    """Any-of conditions; each glob list is matched against one set of paths."""

    always: bool = False
    traced: tuple[Glob, ...] = ()
    executed: tuple[Glob, ...] = ()
    kept: tuple[Glob, ...] = ()
    present: tuple[Glob, ...] = ()
    env: tuple[str, ...] = ()
    # dynamic symbols a kept ELF file imports; files matching `imports_except` are
    # no evidence (they call the function for reasons of their own)
    imports: tuple[str, ...] = ()
    imports_except: tuple[Glob, ...] = ()
    # nor is a program the trace ran whose runs named no path these globs match, when
    # the image's LC_CTYPE locale matches `imports_ran_locale` (if given)
    imports_ran_without: tuple[Glob, ...] = ()
    imports_ran_locale: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.always
            or self.traced
            or self.executed
            or self.kept
            or self.present
            or self.env
            or self.imports
        )


@dataclass(frozen=True)
class Keep:
    """What to add: image paths matching `paths`, and what the named expanders add."""

    reason: str
    paths: tuple[Glob, ...] = ()
    closure: bool = True
    expand: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProfileRule:
    """One keep section; `when` None means whenever the profile applies."""

    keep: Keep
    when: When | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: str
    when: When
    rules: tuple[ProfileRule, ...]


# -- finding and loading ----------------------------------------------------------------


def profile_dirs(extra: Sequence[Path] = ()) -> tuple[Traversable, ...]:
    """Where profiles are read from, in order: `$SLIMMER_PROFILES` if set (it replaces
    the built-in set), else the profiles shipped with slimmer; then each of `extra`
    (`--profiles-dir`), whose profiles replace earlier ones of the same name."""
    env = os.environ.get(ENV_DIR)
    first: tuple[Traversable, ...] = (Path(env),) if env else (builtin_profiles(),)
    return (*first, *extra)


def load_profiles(dirs: Sequence[Traversable] | None = None) -> tuple[Profile, ...]:
    """Every `*.toml` of `dirs` (default: `profile_dirs()`), a later one replacing an
    earlier one of the same name; sorted by name."""
    found: dict[str, Profile] = {}
    for where in profile_dirs() if dirs is None else dirs:
        if not where.is_dir():
            raise UsageError(
                f"reading profiles: {where} is not a directory "
                f"({ENV_DIR} and --profiles-dir must name directories)"
            )
        for entry in sorted(where.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml") and entry.is_file():
                profile = load_profile(entry)
                found[profile.name] = profile
    return tuple(found[name] for name in sorted(found))


def list_profiles(dirs: Sequence[Traversable] | None = None) -> tuple[str, ...]:
    """The names `--profile` and `--no-profile` accept."""
    return tuple(p.name for p in load_profiles(dirs))


def check_names(profiles: Sequence[Profile], names: Iterable[str], option: str) -> None:
    """UsageError when a name given to `option` is not a profile."""
    known = {p.name for p in profiles}
    for name in sorted(set(names) - known):
        raise UsageError(f"{option} {name}: no such profile (known: {', '.join(sorted(known))})")


def _check_selection(
    profiles: Sequence[Profile],
    only: Iterable[str] | None,
    disabled: Iterable[str],
    forced: Iterable[str],
) -> None:
    check_names(profiles, only or (), "--profile")
    check_names(profiles, forced, "--profile")
    check_names(profiles, disabled, "--no-profile")


def load_profile(path: Traversable) -> Profile:
    """Parse and validate one profile file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"profile {path}: cannot be read as TOML: {exc}") from exc
    return _Parser(path).profile(doc)


@dataclass(frozen=True)
class _Parser:
    path: Traversable

    def fail(self, key: str, value: object, why: str) -> UsageError:
        return UsageError(f"profile {self.path}: key {key} = {value!r}: {why}")

    def profile(self, doc: Mapping[str, Any]) -> Profile:
        self.known(doc, _TOP_KEYS, "")
        name = self.text(doc, "name")
        stem = self.path.name.removesuffix(".toml")
        if not _NAME.match(name) or name != stem:
            raise self.fail(
                "name", name, f"must be lowercase [a-z0-9-] and match the file name {stem!r}"
            )
        when = self.when(doc.get("when"), "when")
        if when is None or when.empty:
            raise self.fail(
                "when", doc.get("when"), "a profile needs a condition (or always = true)"
            )
        rules = []
        if "keep" in doc:
            rules.append(ProfileRule(self.keep(doc["keep"], "keep")))
        raw_rules = doc.get("rule", [])
        if not isinstance(raw_rules, list):
            raise self.fail("rule", raw_rules, "must be an array of tables ([[rule]])")
        for i, raw in enumerate(raw_rules):
            rules.append(self.rule(raw, f"rule[{i}]"))
        if not rules:
            raise self.fail("keep", None, "a profile needs [keep] or [[rule]]")
        return Profile(name, self.text(doc, "description"), str(self.path), when, tuple(rules))

    def rule(self, raw: object, key: str) -> ProfileRule:
        table = self.table(raw, key)
        self.known(table, frozenset({"when", "keep"}), key)
        if "keep" not in table:
            raise self.fail(f"{key}.keep", None, "missing")
        when = self.when(table.get("when"), f"{key}.when")
        if when is not None and when.empty:
            raise self.fail(f"{key}.when", table.get("when"), "an empty condition")
        return ProfileRule(self.keep(table["keep"], f"{key}.keep"), when)

    def when(self, raw: object, key: str) -> When | None:
        if raw is None:
            return None
        table = self.table(raw, key)
        self.known(table, _WHEN_KEYS, key)
        always = table.get("always", False)
        if not isinstance(always, bool):
            raise self.fail(f"{key}.always", always, "must be true or false")
        globs = {k: self.globs(table, k, key) for k in _WHEN_GLOBS}
        env = self.strings(table, "env", key)
        for name in env:
            if not name or "=" in name or "/" in name:
                raise self.fail(f"{key}.env", name, "must be an environment variable name glob")
        imports = self.strings(table, "imports", key)
        for name in imports:
            if not _SYMBOL.match(name):
                raise self.fail(f"{key}.imports", name, "must be a bare symbol name (no @version)")
        for name in _IMPORT_KEYS:
            if name in table and not imports:
                raise self.fail(f"{key}.{name}", table[name], "needs imports")
        if "imports_ran_locale" in table and "imports_ran_without" not in table:
            raise self.fail(
                f"{key}.imports_ran_locale",
                table["imports_ran_locale"],
                "needs imports_ran_without",
            )
        return When(
            always=always,
            env=env,
            imports=imports,
            imports_except=self.globs(table, "imports_except", key),
            imports_ran_without=self.globs(table, "imports_ran_without", key),
            imports_ran_locale=self.strings(table, "imports_ran_locale", key),
            **globs,
        )

    def keep(self, raw: object, key: str) -> Keep:
        table = self.table(raw, key)
        self.known(table, _KEEP_KEYS, key)
        closure = table.get("closure", True)
        if not isinstance(closure, bool):
            raise self.fail(f"{key}.closure", closure, "must be true or false")
        expanders = self.strings(table, "expand", key)
        for name in expanders:
            if name not in EXPANDERS:
                raise self.fail(
                    f"{key}.expand",
                    name,
                    f"no such expander (known: {', '.join(sorted(EXPANDERS))})",
                )
        paths = self.globs(table, "paths", key)
        reason = table.get("reason", "")
        if not isinstance(reason, str) or (paths and not reason.strip()):
            raise self.fail(f"{key}.reason", reason, "paths need a reason a user can read")
        if not paths and not expanders:
            raise self.fail(key, dict(table), "keeps nothing (give paths or expand)")
        return Keep(reason.strip(), paths, closure, expanders)

    def globs(self, table: Mapping[str, Any], name: str, key: str) -> tuple[Glob, ...]:
        out = []
        for pattern in self.strings(table, name, key):
            try:
                out.append(compile_glob(pattern))
            except ValueError as exc:
                raise self.fail(f"{key}.{name}", pattern, str(exc)) from exc
        return tuple(out)

    def strings(self, table: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key}.{name}" if key else name, value, "must be a list of strings")
        return tuple(value)

    def text(self, doc: Mapping[str, Any], name: str) -> str:
        value = doc.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, value, "must be a non-empty string")
        return value.strip()

    def table(self, raw: object, key: str) -> Mapping[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(key, raw, "must be a table")
        return raw

    def known(self, table: Mapping[str, Any], allowed: frozenset[str], key: str) -> None:
        for name in sorted(set(table) - allowed):
            full = f"{key}.{name}" if key else name
            raise self.fail(
                full, table[name], f"unknown key (expected one of: {', '.join(sorted(allowed))})"
            )


# -- deciding and applying ------------------------------------------------------------


class ProfileFacts:
    """What one planner pass knows, indexed for the `when` conditions."""

    def __init__(self, ctx: ProfileContext) -> None:
        self.ctx = ctx
        self.traced = PathIndex(ctx.traced)
        executed = set(ctx.executed)
        executed.update(ctx.tree.resolve(p).path for p in ctx.executed)
        self.executed = PathIndex(executed)
        self.kept = PathIndex(ctx.kept)
        self.env = tuple(sorted(ctx.config.env))
        self.runs = by_real_path(ctx.tree, ctx.runs)

    def trigger(self, when: When) -> str | None:
        """Why `when` holds ("env TZ is set"), or None when it does not."""
        if when.always:
            return "always"
        checks: tuple[tuple[PathIndex, tuple[Glob, ...], str], ...] = (
            (self.executed, when.executed, "{} ran"),
            (self.kept, when.kept, "{} is kept"),
            (self.traced, when.traced, "{} was traced"),
        )
        for index, globs, text in checks:
            hit = index.first(globs) if globs else None
            if hit is not None:
                return text.format(hit)
        for name in self.env:
            if any(fnmatchcase(name, pattern) for pattern in when.env):
                return f"env {name} is set"
        for glob in when.present:
            found = expand(self.ctx.tree, glob)
            if found:
                return f"{found[0]} is in the image"
        return self.importer(when)

    def importer(self, when: When) -> str | None:
        """ "<file> imports <name>" for the first kept regular ELF file whose dynamic
        symbol table imports one of `when.imports` and that is evidence (`no_evidence`),
        or None."""
        if not when.imports:
            return None
        wanted = frozenset(when.imports)
        for path in sorted(self.kept.paths):
            entry = self.ctx.tree.get(path)
            if entry is None or not entry.is_regular or not entry.is_elf:
                continue
            if self.no_evidence(path, when):
                continue
            found = sorted(imports_in_tree(self.ctx.tree, path).names & wanted)
            if found:
                return f"{path} imports {', '.join(found)}"
        return None

    def no_evidence(self, path: str, when: When) -> bool:
        """Whether the importer `path` is excused: it matches `imports_except`, or it is
        a program the trace ran whose runs named nothing `imports_ran_without` matches,
        in an image whose locale matches `imports_ran_locale` (when given)."""
        if any(glob.match(path) for glob in when.imports_except):
            return True
        if not when.imports_ran_without:
            return False
        if when.imports_ran_locale and not locale_matches(
            self.ctx.config.env, when.imports_ran_locale
        ):
            return False
        return ran_without(self.runs, path, self.ctx.tree, when.imports_ran_without)


def detect(profiles: Sequence[Profile], ctx: ProfileContext) -> dict[str, str]:
    """Profile name -> why it applies, for the profiles that apply."""
    facts = ProfileFacts(ctx)
    out = {}
    for profile in profiles:
        why = facts.trigger(profile.when)
        if why is not None:
            out[profile.name] = why
    return out


def apply_profiles(
    profiles: Sequence[Profile],
    ctx: ProfileContext,
    only: set[str] | frozenset[str] | None = None,
    disabled: set[str] | frozenset[str] = frozenset(),
    forced: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Addition], list[GeneratedFile]]:
    """What the applicable profiles add in this pass.

    `only` (when given) limits the profiles considered, `disabled` removes
    some, and a `forced` profile applies whatever its `when` says (its rules'
    own conditions still hold). One addition per path and profile; sorted.
    """
    _check_selection(profiles, only, disabled, forced)
    facts = ProfileFacts(ctx)
    additions: dict[tuple[str, str], Addition] = {}
    generated: dict[str, GeneratedFile] = {}
    for profile in sorted(profiles, key=lambda p: p.name):
        if profile.name in disabled or (
            only is not None and profile.name not in only and profile.name not in forced
        ):
            continue
        why = (
            f"--profile {profile.name} was given"
            if profile.name in forced
            else facts.trigger(profile.when)
        )
        if why is None:
            continue
        adds, gens = _apply_one(profile, facts, why)
        for add in adds:
            additions.setdefault((add.path, profile.name), add)
        for gen in gens:
            generated.setdefault(gen.path, gen)
    return ([additions[k] for k in sorted(additions)], [generated[k] for k in sorted(generated)])


def _apply_one(
    profile: Profile, facts: ProfileFacts, why: str
) -> tuple[list[Addition], list[GeneratedFile]]:
    additions: list[Addition] = []
    generated: list[GeneratedFile] = []
    for rule in profile.rules:
        rule_why = why if rule.when is None else facts.trigger(rule.when)
        if rule_why is None:
            continue
        keep = rule.keep
        applies = "applies always" if rule_why == "always" else f"applies because {rule_why}"
        reason = Reason("profile", f"{keep.reason}; {applies}", profile.name)
        for glob in keep.paths:
            additions.extend(
                Addition(p, reason, keep.closure) for p in expand(facts.ctx.tree, glob)
            )
        for name in keep.expand:
            adds, gens = EXPANDERS[name](facts.ctx, profile.name)
            additions.extend(adds)
            generated.extend(gens)
    return additions, generated


def profiles_fn(
    dirs: Sequence[Traversable] | None = None,
    only: set[str] | frozenset[str] | None = None,
    disabled: set[str] | frozenset[str] = frozenset(),
    forced: set[str] | frozenset[str] = frozenset(),
) -> ProfilesFn:
    """Load the profiles once and return the planner's per-pass callback."""
    profiles = load_profiles(dirs)
    _check_selection(profiles, only, disabled, forced)

    def run(ctx: ProfileContext) -> tuple[list[Addition], list[GeneratedFile]]:
        return apply_profiles(profiles, ctx, only, disabled, forced)

    return run
