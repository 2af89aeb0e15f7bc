"""The whole `slim IMAGE -o OUT` job: read, trace, plan, write, verify, tag."""
