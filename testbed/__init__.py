"""Local test bed: free ports, SIPp driver, fake Twilio, managed PostgreSQL, SMTP sink, headless Chromium
helpers, telephony scenario — used by tests, benchmarks and scripts, never by production code."""
