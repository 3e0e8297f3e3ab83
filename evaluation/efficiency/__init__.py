"""Efficiency: GFLOPs in DiT's convention (flops.py), split into projections and attention matmuls
(flop_breakdown.py), PT-DiT's attention cost of Eq. 4 (attention_cost.py), per-point profiling
(profile.py, file names in point_files.py), the video attentions' cost against frame count (video.py),
and results/table_efficiency.csv with its figures (table.py, figures.py; `python -m
evaluation.efficiency.table|figures|video`). The paper's efficiency numbers are data in
evaluation/report/paper_efficiency.py; quality metrics are in evaluation/metrics/; `ptdit profile` is in
ptdit/cli/profile.py."""
