"""synthguard.api: the command line (and, later, the HTTP service)."""
