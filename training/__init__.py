"""Training scripts and their helpers: a script folder, importable from the checkout (not installed)."""
