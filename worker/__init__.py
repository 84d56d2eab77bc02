"""synthguard.worker: Celery tasks over the detector and generator libraries.

The service (API + Celery workers) is built on top of the libraries in a later
stage; today the library functions are called from the CLI in ``api.cli``.
"""
