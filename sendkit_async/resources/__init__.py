"""One class per API area: each method is a path, its parameters and a model type."""
