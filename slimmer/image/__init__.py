"""Images in and out: archives and the engine's `docker save` stream, layers merged into
one tree (whiteouts, opaque directories, links resolved inside the root), the
content store, the read cache, and the writer of the slim image."""
