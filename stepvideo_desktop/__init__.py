"""StepVideo Desktop: the PySide6 face of the engine. Never imports torch; only the worker process does."""
