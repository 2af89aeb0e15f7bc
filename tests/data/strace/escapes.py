# File names strace has to escape, opened relative to a directory fd.
import os

d = b"/tmp/slimmer-rec/esc"
names = [
    b"new\nline",
    b'quo"te',
    b"back\\slash",
    b"lt<gt>",
    b"com,ma",
    b"\xff\xfebin",
    b"caf\xc3\xa9",
    b"tab\there",
    b"sp ace",
]
fd = os.open(d, os.O_RDONLY)
for n in names:
    os.close(os.open(n, os.O_RDONLY, dir_fd=fd))
