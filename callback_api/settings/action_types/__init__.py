"""Settings → Action types: what a new action of each type starts with."""
