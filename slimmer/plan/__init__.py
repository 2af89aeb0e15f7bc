"""Deciding what the slim image keeps, and why: the keep set, path globs, profiles
(the knowledge base in `profiles/`), their expanders, and the planner's fixed point."""
