"""tune step: hyper-parameter search for the train step's model (local backend: Optuna)."""
