"""The KFP pipeline: definition, compilation, local runs and cluster submission."""
