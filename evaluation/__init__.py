"""Evaluation of the suite's models, one sub-package per concern: metrics/ (FID, sFID, IS, precision/recall,
FVD, CLIPSIM and the Inception / I3D networks they use), extractors/ (the stand-in feature networks this
suite trains), efficiency/ (GFLOPs, profiling, attention cost, the efficiency table and figures) and
report/ (the paper's published numbers, the quality tables and figures, and the workflow's plans). The
`ptdit` verbs that call these live in ptdit/cli/."""
