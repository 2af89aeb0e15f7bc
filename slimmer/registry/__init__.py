"""Registries: references, credentials from Docker's config.json, the distribution
protocol (the one module that speaks HTTP to a registry) and images read from one."""
