"""The seccomp profile builder and its data (slimmer.seccomp), pure."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from slimmer.errors import ExitStatus, OutputUnwritable, UsageError
from slimmer.pipeline.seccomp import check_writable, traced_calls
from slimmer.seccomp.data import engine_default, runtime_needs
from slimmer.seccomp.profile import ENOSYS, Evidence, build_profile, engine_profile, refusals
from slimmer.trace.events import parse

MOBY_2010_AMD64 = 351  # moby v20.10.24 default.json, default capabilities, amd64


def test_engine_default_counts_the_moby_profile() -> None:
    d = engine_default()
    assert "v20.10.24/profiles/seccomp/default.json" in d.source
    assert len(d.allowed("amd64")) == MOBY_2010_AMD64
    assert {"arch_prctl", "modify_ldt", "clone"} <= d.allowed("amd64")
    assert "arch_prctl" not in d.allowed("arm64")
    # calls that need a capability the engine does not grant by default are not there
    assert not {"mount", "reboot", "init_module", "clone3"} & d.allowed("amd64")


def test_runtime_groups_have_reasons_and_keep_the_sensor_apart() -> None:
    needs = runtime_needs()
    kinds = {g.kind for g in needs.groups}
    assert {"engine", "loader", "runtime"} <= kinds
    assert all(g.why and g.names for g in needs.groups)
    every = frozenset().union(*(g.names for g in needs.groups))
    assert "ptrace" in needs.sensor and "ptrace" not in every
    assert "process_vm_readv" not in every


def test_profile_allows_traced_and_runtime_calls_with_reasons() -> None:
    p = build_profile(Evidence(frozenset({"socket", "bind", "read"})), "amd64")
    allowed = {a.name: a for a in p.allowed}
    assert allowed["socket"].kind == "traced"
    assert [r.kind for r in allowed["read"].reasons][:2] == ["traced", "engine"]
    assert allowed["execve"].kind == "engine"
    assert "ptrace" not in p.names and "wait4" not in p.names
    assert p.fewer == MOBY_2010_AMD64 - len(p.allowed) > 200
    assert "socket: allowed; traced" in p.explain("socket")
    assert "not allowed" in p.explain("getpriority")


def test_profile_never_goes_past_the_engine_default() -> None:
    p = build_profile(Evidence(frozenset({"mount", "clone3", "read"})), "amd64")
    assert "mount" not in p.names and "mount" in p.dropped
    assert "clone3" in p.enosys and "clone3" not in p.names
    assert p.names <= engine_default().allowed("amd64")


def test_imports_and_widened_calls_are_reasons() -> None:
    ev = Evidence(
        frozenset({"read"}),
        imports=(("/usr/bin/app", "system"),),
        widened=(("getpriority", "refused in a verification run"),),
    )
    allowed = {a.name: a for a in build_profile(ev, "amd64").allowed}
    assert allowed["wait4"].kind == "import"
    assert "/usr/bin/app imports system()" in allowed["wait4"].reasons[0].detail
    assert allowed["getpriority"].kind == "verify"


def test_engine_json_has_the_image_architecture_and_default_action() -> None:
    p = build_profile(Evidence(frozenset({"read"})), "arm64")
    doc = engine_profile(p)
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert doc["archMap"] == [
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
    ]
    allowed = {n for r in doc["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert allowed == p.names
    enosys = [r for r in doc["syscalls"] if r.get("errnoRet") == ENOSYS]
    assert len(enosys) == 1 and "clone3" in enosys[0]["names"]
    amd = engine_profile(build_profile(Evidence(frozenset()), "amd64"))
    assert amd["archMap"][0]["subArchitectures"] == ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    json.dumps(doc)  # plain JSON


def test_diagnosis_profile_adds_the_sensor_only() -> None:
    p = build_profile(Evidence(frozenset({"read"})), "amd64")
    doc = engine_profile(p, runtime_needs().sensor)
    sensor = [r for r in doc["syscalls"] if r["comment"].startswith("sensor")]
    assert "ptrace" in sensor[0]["names"] and "ptrace" not in p.names


def test_unknown_architecture_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="mips"):
        build_profile(Evidence(frozenset()), "mips")


def test_refusals_name_calls_outside_the_profile() -> None:
    p = build_profile(Evidence(frozenset({"read"})), "amd64")
    failed = [
        ("getpriority", "EPERM", "/usr/bin/python3"),
        ("read", "EPERM", "/x"),  # allowed: a genuine EPERM, not the filter
        ("ptrace", "EPERM", "/x"),  # the sensor's: allowed in a diagnosis run
        ("openat", "ENOENT", "/x"),
    ]
    found = refusals(failed, p, runtime_needs().sensor)
    assert [r.describe() for r in found] == ["getpriority (EPERM, by /usr/bin/python3)"]


def test_trace_records_every_call_and_refusals() -> None:
    log = (
        '7 execve("/app", ["/app"], 0x0 /* 1 var */) = 0\n'
        "7 getpriority(PRIO_PROCESS, 0) = -1 EPERM (Operation not permitted)\n"
        "7 clone3({flags=CLONE_VM, exit_signal=0}, 88) = -1 ENOSYS (Function not implemented)\n"
        "7 clone(child_stack=NULL, flags=CLONE_VM|SIGCHLD) = 8\n"
        "8 getpid() = 8\n"
    )
    trace = parse(log)
    assert trace.syscalls == ("clone", "clone3", "execve", "getpid", "getpriority")
    assert trace.refusals == (("clone3", "ENOSYS", 7), ("getpriority", "EPERM", 7))
    assert traced_calls([trace]) == {"clone", "execve", "getpid"}


def test_unwritable_path_is_refused_with_its_own_exit_code(tmp_path: Path) -> None:
    check_writable(tmp_path / "ok.json")
    assert not (tmp_path / "ok.json").exists()  # nothing created
    for bad in (tmp_path, tmp_path / "missing" / "p.json"):
        with pytest.raises(OutputUnwritable) as info:
            check_writable(bad)
        assert info.value.exit_code == ExitStatus.UNWRITABLE
        assert int(info.value.exit_code) == 11


@pytest.mark.parametrize("command", [["img:1", "-o", "img:slim"], ["profile", "img:1"]])
def test_cli_refuses_an_unwritable_profile_before_any_work(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from slimmer.cli.main import _run

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing answers there
    bad = tmp_path / "missing" / "p.json"
    code = _run([*command, "--seccomp", str(bad)])
    err = capsys.readouterr().err
    assert code == 11, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("slim: error: --seccomp") and "no directory" in lines[-1]
    assert "engine" not in err


def test_report_faces_show_the_profile_by_reason() -> None:
    from slimmer.pipeline.slim import SeccompResult
    from slimmer.report import seccomp_view, slim_html, slim_md
    from slimmer.seccomp.profile import Refusal

    p = build_profile(Evidence(frozenset({"socket", "read"})), "amd64")
    sec = SeccompResult(Path("out/p.json"), p, (Refusal("getpriority", "EPERM", "python3"),))
    doc = {"seccomp": seccomp_view.to_json(sec)}
    assert doc["seccomp"]["allowed_by_reason"]["traced"] == ["read", "socket"]
    assert doc["seccomp"]["fewer_than_default"] == MOBY_2010_AMD64 - len(p.allowed)
    rows = dict(seccomp_view.rows(doc))
    assert rows["Apply with"] == "docker run --security-opt seccomp=out/p.json"
    assert f"{p.fewer} fewer than the engine's default ({MOBY_2010_AMD64})" in rows["Allowed calls"]
    assert rows["Refused by the profile"] == "getpriority (EPERM, by python3)"
    assert "getpriority (EPERM, by python3)" in seccomp_view.refused_line(doc)
    assert "Seccomp profile (--seccomp)" in slim_md._seccomp(doc)
    assert "<h2>Seccomp profile</h2>" in slim_html._seccomp(doc)
    assert seccomp_view.rows({}) == [] and slim_md._seccomp({}) == ""
    saved = json.loads(json.dumps(doc, sort_keys=True))  # as report.json stores it
    assert slim_md._seccomp(saved) == slim_md._seccomp(doc)
    schema = json.loads((Path(__file__).parent.parent / "docs/schemas/slim-v3.json").read_text())
    jsonschema.validate(doc["seccomp"], schema["properties"]["seccomp"])
