"""Running an image under the tracer: the strace sensor, strace text into events, probe
specs and running them, and the traced run (`TracedRun`) that ties them together."""
