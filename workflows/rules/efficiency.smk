# Efficiency benchmark (issue 3): one `ptdit profile` job per (device, dtype, model, resolution)
# point, then the table and the figures (helpers in common.smk).


rule profile_point:
    output:
        "results/efficiency/{device}-{dtype}/{model}_{px}.json",
    params:
        model=lambda wildcards: model_from_slug(wildcards.model),
        args=profile_args,
        torch_threads=torch_threads,
    log:
        "logs/efficiency/{device}-{dtype}/{model}_{px}.log",
    wildcard_constraints:
        device="cpu|cuda",
        dtype="fp32|bf16",
        model="[^/_]+(_[^/_]+)?",
        px="[0-9]+",
    threads: profile_threads
    resources:
        gpu=lambda wildcards: int(wildcards.device == "cuda"),
    conda:
        "../envs/ptdit.yaml"
    shell:
        "ptdit profile --model '{params.model}' --resolution {wildcards.px} --device {wildcards.device} "
        "--dtype {wildcards.dtype} --threads {params.torch_threads} {params.args} --out {output} > {log} 2>&1"


rule efficiency_table:
    input:
        efficiency_points(),
    output:
        table="results/table_efficiency.csv",
        claims="results/table_efficiency_claims.csv",
        figures=expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"]),
    log:
        "logs/efficiency/table.log",
    conda:
        "../envs/ptdit.yaml"
    shell:
        "(python -m evaluation.efficiency_table {input} --out {output.table} --claims {output.claims} && "
        "python -m evaluation.efficiency_figures {output.table} --out-dir results/figures) > {log} 2>&1"
