#!/bin/sh
# Re-record the strace logs of this directory on the host (see README.md).
# Needs strace, python3 (/usr/bin/python3) and dash as /bin/sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
W=/tmp/slimmer-rec
rm -rf "$W" && mkdir -p "$W/links" "$W/esc"
ln -s /bin/true "$W/links/mytrue"
/usr/bin/python3 - <<'PY'
names = [b'new\nline', b'quo"te', b'back\\slash', b'lt<gt>', b'com,ma',
         b'\xff\xfebin', b'caf\xc3\xa9', b'tab\there', b'sp ace']
for n in names:
    open(b"/tmp/slimmer-rec/esc/" + n, "wb").close()
PY
cp "$here/fork_cwd.py" "$here/escapes.py" "$W/"
TRACE='?open,?openat,?openat2,?creat,?stat,?stat64,?lstat,?lstat64,?newfstatat,?fstatat64,?statx,?access,?faccessat,?faccessat2,?readlink,?readlinkat,?execve,?execveat,?chdir,?fchdir,?mkdir,?mkdirat,?mknod,?mknodat,?unlink,?rmdir,?unlinkat,?rename,?renameat,?renameat2,?link,?linkat,?symlink,?symlinkat,?fork,?vfork,?clone,?clone2,?clone3,?bind'
# slimmer.trace.events.STRACE_OPTIONS, with -x chosen per log:
opts() { echo "-f -qq -y $1 -s 4096 --seccomp-bpf -e signal=none -e trace=$TRACE"; }
rec() {  # rec LOG ESCAPE-OPTION COMMAND...
  log=$1 x=$2; shift 2
  (cd "$W" && env -i PATH=/usr/bin:/bin LANG=C strace $(opts "$x") -o "$here/$log" -- "$@") \
    >/dev/null 2>&1
}
rec python_chdir.log -x /usr/bin/python3 -c 'import json, os; os.chdir("/tmp"); open("x")'
rec fork_cwd.log -x /usr/bin/python3 fork_cwd.py
rec shell.log -x /bin/sh -c 'cd /etc && cat hostname; (cd /tmp/slimmer-rec/links && ./mytrue && ../links/mytrue); cat /etc/passwd/x; cat /nonexistent; cat /etc/hostname & cat /etc/passwd & wait'
rec escapes.log -x /usr/bin/python3 escapes.py
rec escapes_xx.log -xx /usr/bin/python3 escapes.py
# -q repeats -qq: it only stands in for the escape option, so strace uses octal
rec escapes_octal.log -q /usr/bin/python3 escapes.py
