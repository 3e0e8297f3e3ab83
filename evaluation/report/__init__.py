"""The workflow's reports: the papers' published numbers as data (paper_efficiency.py, paper_quality.py,
paper_video.py), the quality tables and figures (imagenet.py and imagenet_figures.py for
results/table_imagenet.csv and table_ablation.csv, video.py for table_ucf101.csv and table_msrvtt.csv,
figure_files.py for atomic PNG/PDF), what the samples look like (sample_grid.py: a grid per
image sample file and results/figures/samples.png; frame_strip.py and video_strips.py: a frame strip per
video table row), and the plans the Snakemake rules follow (imagenet_plan.py,
video_plan.py: which rows a config asks for and where each stage's files live; torch-free so the
Snakefile parses fast). The numbers come from evaluation/metrics/ and evaluation/efficiency/ (whose
table and figures live there); `ptdit report-*` verbs are in ptdit/cli/report.py and video_evaluate.py."""
