"""Running a model: preprocessing from its weights, prediction, fusing for speed, export."""
