# Working directories across chdir, fork (a copy), threads (shared) and fchdir,
# using calls without a dirfd (access, readlink) so only cwd tracking places them.
import os
import threading

os.chdir("/usr")
pid = os.fork()
if pid == 0:
    os.access("share", os.R_OK)  # /usr/share: inherited from the parent
    os.chdir("lib")  # relative chdir in the child only
    os.access("../share/misc", os.R_OK)  # raw /usr/lib/../share/misc
    os._exit(0)
os.waitpid(pid, 0)
os.access("bin", os.R_OK)  # still /usr in the parent
t = threading.Thread(target=os.chdir, args=("/etc",))
t.start()
t.join()
os.access("hostname", os.R_OK)  # /etc/hostname: threads share the cwd
fd = os.open("/var", os.O_RDONLY)
os.fchdir(fd)
os.access("lib", os.R_OK)  # /var/lib after fchdir
os.access("no-such-file", os.R_OK)
d = os.open("/etc", os.O_RDONLY)
os.stat("passwd", dir_fd=d)
os.close(os.open("hostname", os.O_RDONLY, dir_fd=d))
os.readlink("mytrue", dir_fd=os.open("/tmp/slimmer-rec/links", os.O_RDONLY))
