"""Transform step: parse, validate, feature-engineer and time-split the raw CSV (Beam)."""
