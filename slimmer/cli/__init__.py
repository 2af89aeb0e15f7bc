"""The `slim` command line: click commands and parameter types, one library call each."""
