# PT-DiT reproducibility suite: the whole DAG. Rules live in workflows/rules/*.smk, the embedded
# default config in workflows/config/default.yaml (validated against schema.yaml at start-up).
#
#     snakemake --cores all results/table_efficiency.csv
#     snakemake --cores all --configfile my.yaml results/table_efficiency.csv

import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "workflows/config/default.yaml")


validate(config, os.path.join(workflow.basedir, "workflows/config/schema.yaml"))


include: "workflows/rules/common.smk"
include: "workflows/rules/efficiency.smk"
include: "workflows/rules/imagenet.smk"
include: "workflows/rules/video.smk"


rule all:
    input:
        "results/table_efficiency.csv",
        "results/table_imagenet.csv",
        "results/table_ablation.csv",
        "results/table_compression.csv",
        "results/table_ucf101.csv",
        "results/table_msrvtt.csv",
    default_target: True
