"""Settings › users (admins only): create, role and centralist, (de)activate, new password, API
token; routes on the settings blueprint."""
