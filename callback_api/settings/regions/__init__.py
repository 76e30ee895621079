"""Settings › regions: list, create, edit (code, name, boundary); routes on the settings blueprint."""
