# Efficiency benchmark (issue 3): one `ptdit profile` job per (device, dtype, model, resolution)
# point, timed ones also once per torch.compile mode (MODEL_PX-compiled.json, config
# efficiency.<device>.compile), then the table and the figures (helpers in common.smk).
# Video (issue 8, config efficiency.video, optional): the three attentions against frame count, one
# counting job per model on the meta device (GFLOPs + activation estimates), and one measured job per
# CUDA point where a GPU is wanted (evaluation/efficiency/video.py).

from evaluation.efficiency.point_files import model_slug

VIDEO_EFFICIENCY = EFFICIENCY.get("video")
VIDEO_FIGURE_NAMES = ["gflops_vs_frames", "memory_vs_frames"]
# Point files as evaluation/efficiency/video.py names them: MODEL_PXxFRAMES.json. Counted: every
# (model, resolution, frames); measured: the CUDA subset, where a GPU is wanted.
VIDEO_POINTS = []
if VIDEO_EFFICIENCY:
    VIDEO_POINTS = [f"results/efficiency/video-cpu-fp32/{model_slug(m)}_{r}x{f}.json"
                    for m in VIDEO_EFFICIENCY["models"] for r in VIDEO_EFFICIENCY["resolutions"]
                    for f in VIDEO_EFFICIENCY["frames"]]
    if VIDEO_EFFICIENCY.get("cuda") and cuda_wanted():
        VIDEO_POINTS += [f"results/efficiency/video-cuda-{EFFICIENCY['cuda']['dtype']}/{model_slug(m)}_{r}x{f}.json"
                         for m in VIDEO_EFFICIENCY["models"] for r in VIDEO_EFFICIENCY["cuda"]["resolutions"]
                         for f in VIDEO_EFFICIENCY["cuda"]["frames"]]


rule profile_point:
    output:
        "results/efficiency/{device}-{dtype}/{model}_{px}{compiled}.json",
    params:
        model=lambda wildcards: model_from_slug(wildcards.model),
        args=profile_args,
        torch_threads=torch_threads,
    log:
        "logs/efficiency/{device}-{dtype}/{model}_{px}{compiled}.log",
    wildcard_constraints:
        device="cpu|cuda",
        dtype="fp32|bf16",
        model="[^/_]+(_[^/_]+)?",
        px="[0-9]+",
        compiled="|-compiled",          # point_files.COMPILED_SUFFIX
    threads: profile_threads
    resources:
        gpu=lambda wildcards: int(wildcards.device == "cuda"),
    conda:
        "../envs/ptdit.yaml"
    shell:
        "ptdit profile --model '{params.model}' --resolution {wildcards.px} --device {wildcards.device} "
        "--dtype {wildcards.dtype} --threads {params.torch_threads} {params.args} --out {output} > {log} 2>&1"


if VIDEO_EFFICIENCY:

    rule video_count:
        output:
            [f"results/efficiency/video-cpu-fp32/{{model}}_{r}x{f}.json"
             for r in VIDEO_EFFICIENCY["resolutions"] for f in VIDEO_EFFICIENCY["frames"]],
        params:
            model=lambda wildcards: model_from_slug(wildcards.model),
            settings=lambda wildcards: (f"--resolution {' '.join(map(str, VIDEO_EFFICIENCY['resolutions']))} "
                                        f"--frames {' '.join(map(str, VIDEO_EFFICIENCY['frames']))} "
                                        f"--temporal-compression {VIDEO_EFFICIENCY.get('temporal_compression', 1)}"),
        log:
            "logs/efficiency/video-cpu-fp32/{model}.log",
        wildcard_constraints:
            model="[^/_]+(_[^/_]+)?",
        conda:
            "../envs/ptdit.yaml"
        shell:
            "python -m evaluation.efficiency.video count --model '{params.model}' {params.settings} --threads 1 "
            "--out-dir results/efficiency/video-cpu-fp32 > {log} 2>&1"


    rule video_cuda_point:
        output:
            "results/efficiency/video-cuda-{dtype}/{model}_{px}x{frames}.json",
        params:
            model=lambda wildcards: model_from_slug(wildcards.model),
            settings=lambda wildcards: (f"--train-batch {VIDEO_EFFICIENCY['cuda'].get('train_batch', 1)} "
                                        f"--temporal-compression {VIDEO_EFFICIENCY.get('temporal_compression', 1)} "
                                        f"--warmup {EFFICIENCY['cuda']['warmup']} --repeats {EFFICIENCY['cuda']['repeats']} "
                                        f"--max-seconds {EFFICIENCY['cuda']['max_seconds']}"),
        log:
            "logs/efficiency/video-cuda-{dtype}/{model}_{px}x{frames}.log",
        wildcard_constraints:
            dtype="fp32|bf16",
            model="[^/_]+(_[^/_]+)?",
            px="[0-9]+",
            frames="[0-9]+",
        resources:
            gpu=1,
        conda:
            "../envs/ptdit.yaml"
        shell:
            "python -m evaluation.efficiency.video point --model '{params.model}' --resolution {wildcards.px} "
            "--frames {wildcards.frames} --device cuda --dtype {wildcards.dtype} {params.settings} --out {output} > {log} 2>&1"


rule efficiency_table:
    input:
        efficiency_points(),
        VIDEO_POINTS,
    output:
        table="results/table_efficiency.csv",
        claims="results/table_efficiency_claims.csv",
        figures=expand("results/figures/{name}.{ext}", name=FIGURE_NAMES + VIDEO_FIGURE_NAMES, ext=["png", "pdf"]),
    log:
        "logs/efficiency/table.log",
    conda:
        "../envs/ptdit.yaml"
    shell:
        "(python -m evaluation.efficiency.table {input} --out {output.table} --claims {output.claims} && "
        "python -m evaluation.efficiency.figures {output.table} --out-dir results/figures) > {log} 2>&1"
