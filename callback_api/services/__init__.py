"""Services the panel needs that the core package does not (yet) offer: participants, users, areas, photos."""
