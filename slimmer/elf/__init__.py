"""ELF files and the dynamic loader: parsing headers, ld.so.cache, the loader's search
rules (glibc and musl), and the closure `slim deps` shows."""
