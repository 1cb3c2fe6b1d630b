"""Inputs on disk and in the database: the versioned input format, the built-in scenarios."""
