"""Settings › message templates: the grid, edit with preview, reset to the default; routes on
the settings blueprint."""
