"""The context a service runs in (environment, mounts, delivered files, networks),
given for the runs and never for the image: see `slimmer.context.run`, and
`slimmer.context.compose` for a compose project's."""
