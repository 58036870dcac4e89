"""The generic trainer, its datasets, evaluation, and running on one process or many."""
