"""Settings › centralists: list per region, add, edit, on/off duty, (de)activate; routes on the
settings blueprint."""
