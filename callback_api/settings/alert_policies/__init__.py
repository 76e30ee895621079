"""Settings → Alert retries: what follows busy, no answer, an answering machine and a failed
call, and when an alert falls back to SMS (:mod:`burgernet.alert_policies`)."""
