"""Analyses of an image that need no container: `inspect` (with dive's efficiency),
package inventories, and the `check` budget rules with their config."""
