"""synthguard.detector: judges media (decoding and validation, models, training, inference)."""
