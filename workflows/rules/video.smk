# The video comparison (issue 8): for UCF-101 (class models) and MSR-VTT (text models): stand-in (or the
# user's copy) -> encode once -> stand-in feature networks and the reference clips -> train per row ->
# sample -> evaluate -> results/table_{ucf101,msrvtt}.csv. Which rows exist, where their files live and
# each stage's options: evaluation/report/video_plan.py; each rule is one `ptdit` command.
#
# Runs, samples and evaluations live in results/{runs,samples,eval}/video/{dataset}/...: one level more
# than the ImageNet rules' patterns, so no file matches a rule of both comparisons. Training seed N > 0
# runs in s{steps}_seedN/ (the `seed` wildcard of imagenet.smk); the table averages a row's seeds.


import shlex

from ptdit.data.video_standin import OBJECTS as STANDIN_OBJECTS


rule video_prepare_standin:
    output:
        "results/data/{dataset}/standin/STANDIN",
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        args=lambda wildcards: video_plan.standin_args(VIDEO, wildcards.dataset),
        # Not passed on: a changed design of the procedural objects is a changed param, so Snakemake's
        # default rerun triggers remake a results/ folder's stand-in (and all after it) instead of the
        # CLI refusing the old one.
        objects=STANDIN_OBJECTS,
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/prepare_standin.log",
    shell:
        "ptdit prepare-video-standin {wildcards.dataset} {params.out} {params.args} > {log} 2>&1"


rule video_encode:
    input:
        video_source,
    output:
        "results/data/{dataset}/encoded/{split}/meta.json",
    params:
        root=lambda wildcards: video_plan.data_root(VIDEO, wildcards.dataset),
        out=lambda wildcards, output: os.path.dirname(output[0]),
        clip=lambda wildcards: video_plan.clip_args(VIDEO, wildcards.dataset),
        encode=lambda wildcards: video_plan.encode_args(VIDEO, wildcards.dataset),
    wildcard_constraints:
        dataset="ucf101|msrvtt",
        split="train|test",
    threads: 1
    resources:
        gpu=VIDEO_GPU,
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/encode_{split}.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit encode-video {wildcards.dataset} {params.root} {params.out} "
        "--split {wildcards.split} {params.clip} {params.encode} --num-workers 0 > {log} 2>&1"


rule video_reference:
    input:
        video_source,
    output:
        "results/reference/{dataset}/{split}.npz",
    params:
        root=lambda wildcards: video_plan.data_root(VIDEO, wildcards.dataset),
        clip=lambda wildcards: video_plan.clip_args(VIDEO, wildcards.dataset),
        max_clips=VIDEO["evaluate"]["num_clips"],
    wildcard_constraints:
        dataset="ucf101|msrvtt",
        split="train|test",
    threads: 1
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/reference_{split}.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit make-video-reference {params.root} {output} --kind {wildcards.dataset} "
        "--split {wildcards.split} {params.clip} --max-clips {params.max_clips} > {log} 2>&1"


# The stand-in's feature networks, trained once on the stand-in's training split (the real networks
# are files named in config video.extractors): UCF-101's 3-D CNN (FVD, IS) and frame CNN (frame FID),
# MSR-VTT's 3-D CNN (FVD; a class per caption set) and its CLIP (CLIPSIM).
rule video_extractor_ucf101:
    input:
        lambda wildcards: video_source_files("ucf101"),
    output:
        c3d=video_plan.c3d_file("ucf101"),
        frames=video_plan.FRAMES_CNN,
    params:
        root=video_plan.data_root(VIDEO, "ucf101"),
        clip=video_plan.clip_args(VIDEO, "ucf101"),
        steps=VIDEO["extractors"].get("c3d_steps", 400),
        epochs=VIDEO["extractors"].get("frame_epochs", 10),
    threads: 1
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/ucf101/extractor.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit train-video-extractor {params.root} {output.c3d} --kind ucf101 {params.clip} "
        "--steps {params.steps} --frames-out {output.frames} --frame-epochs {params.epochs} > {log} 2>&1"


rule video_extractor_msrvtt:
    input:
        lambda wildcards: video_source_files("msrvtt"),
    output:
        video_plan.c3d_file("msrvtt"),
    params:
        root=video_plan.data_root(VIDEO, "msrvtt"),
        clip=video_plan.clip_args(VIDEO, "msrvtt"),
        steps=VIDEO["extractors"].get("c3d_steps", 400),
    threads: 1
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/msrvtt/extractor.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit train-video-extractor {params.root} {output} --kind msrvtt {params.clip} "
        "--steps {params.steps} > {log} 2>&1"


rule video_clip:
    input:
        lambda wildcards: video_source_files("msrvtt"),
    output:
        video_plan.SMALL_CLIP,
    params:
        root=video_plan.data_root(VIDEO, "msrvtt"),
        clip=video_plan.clip_args(VIDEO, "msrvtt"),
        steps=VIDEO["extractors"].get("clip_steps", 200),
    threads: 1
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/msrvtt/clip.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit train-video-clip {params.root} {output} {params.clip} --steps {params.steps} "
        "> {log} 2>&1"


# Only final.pt is declared: Snakemake deletes the declared output of a failed job, and the
# checkpoints beside it survive, so a rerun resumes (ptdit train resumes any run folder).
rule video_train:
    input:
        lambda wildcards: video_plan.encoded_meta(wildcards.dataset, "train"),
    output:
        "results/runs/video/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/final.pt",
    params:
        run_dir=lambda wildcards, output: os.path.dirname(output[0]),
        data=lambda wildcards, input: os.path.dirname(input[0]),
        model=lambda wildcards: video_run(wildcards).model,
        overrides=video_overrides,
        launch=launcher(VIDEO["train"]),
        batch=VIDEO["train"]["batch_size"],
        lr=VIDEO["train"]["lr"],
        ema=VIDEO["train"]["ema_decay"],
        ckpt=VIDEO["train"]["ckpt_every"],
        log_every=VIDEO["train"].get("log_every", 10),
        seed=lambda wildcards: int(wildcards.seed[len("_seed"):] or 0),   # weights, data order, noise (ptdit/train.py)
        dropout=VIDEO["train"].get("cond_dropout", 0.1),
        objective_options=lambda wildcards: " ".join(
            f"-o {k}={v}" for k, v in VIDEO["train"].get("objective_options", {}).get(wildcards.objective, {}).items()),
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    threads: VIDEO["train"].get("threads", 1)
    resources:
        gpu=VIDEO["train"].get("gpus", 0),
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/train/{model}_{objective}_{variant}_s{steps}{seed}.log",
    benchmark:
        "logs/video/{dataset}/train/{model}_{objective}_{variant}_s{steps}{seed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} train {params.run_dir} --data {params.data} "
        "--model '{params.model}' {params.overrides} --objective {wildcards.objective} {params.objective_options} "
        "--steps {wildcards.steps} --seed {params.seed} "
        "--batch-size {params.batch} --lr {params.lr} --ema-decay {params.ema} --cond-dropout {params.dropout} "
        "--ckpt-every {params.ckpt} --log-every {params.log_every} --num-workers 0 --no-progress > {log} 2>&1"


rule video_sample:
    input:
        ckpt="results/runs/video/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/final.pt",
        captions=caption_input,
    output:
        "results/samples/video/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}.npz",
    params:
        launch=launcher(VIDEO["sample"]),
        num=VIDEO["sample"]["num_samples"],
        batch=VIDEO["sample"]["batch_size"],
        condition=lambda wildcards, input: (f"--captions {os.path.dirname(input.captions[0])}" if input.captions
                                            else "--labels balanced"),
        options=lambda wildcards: " ".join(f"-s {k}={v}" for k, v in
                                           VIDEO["sample"].get("sampler_options", {}).get(wildcards.sampler, {}).items()),
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    threads: VIDEO["sample"].get("threads", 1)
    resources:
        gpu=VIDEO["sample"].get("gpus", 0),
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/sample/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}.log",
    benchmark:
        "logs/video/{dataset}/sample/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} sample {input.ckpt} {output} --num-samples {params.num} "
        "--batch-size {params.batch} --num-steps {wildcards.nsteps} --sampler {wildcards.sampler} "
        "--cfg-scale {wildcards.cfg} {params.condition} {params.options} > {log} 2>&1"


rule video_evaluate:
    input:
        samples="results/samples/video/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}.npz",
        reference=lambda wildcards: video_plan.reference_npz(VIDEO, wildcards.dataset),
        networks=lambda wildcards: require_video_paths() + video_plan.built_networks(VIDEO, wildcards.dataset),
    output:
        "results/eval/video/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}.json",
    params:
        args=lambda wildcards: video_plan.evaluate_args(VIDEO, wildcards.dataset),
        device="cuda" if VIDEO_EVAL_GPU else "cpu",
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    threads: 1
    resources:
        gpu=VIDEO_EVAL_GPU,
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/{dataset}/eval/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}.log",
    shell:
        "OMP_NUM_THREADS={threads} ptdit evaluate-video {input.samples} --reference {input.reference} {params.args} "
        "--device {params.device} --out {output} > {log} 2>&1"


# A frame strip per table row (evaluation/report/video_strips.py): what the numbers are about, for a reader's eye.
rule video_strips:
    input:
        samples=lambda wildcards: [row.samples(video_plan.stem(wildcards.dataset))
                                   for row in video_plan.table_rows(VIDEO, wildcards.dataset)],
        reference=lambda wildcards: video_plan.reference_npz(VIDEO, wildcards.dataset),
        meta=lambda wildcards: video_plan.encoded_meta(wildcards.dataset, VIDEO["evaluate"]["reference_split"]),
    output:
        "results/figures/samples_{dataset}.png",
    params:
        samples=lambda wildcards, input: " ".join(
            shlex.quote(f"{row.model}={path}")
            for row, path in zip(video_plan.table_rows(VIDEO, wildcards.dataset), input.samples)),
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/report/samples_{dataset}.log",
    shell:
        "ptdit video-strips {output} --reference {input.reference} --meta {input.meta} --samples {params.samples} "
        "> {log} 2>&1"


rule video_table:
    input:
        video_tables_input,
        strips="results/figures/samples_{dataset}.png",
    output:
        csv="results/table_{dataset}.csv",
        md="results/table_{dataset}.md",
    params:
        rows=video_rows_yaml,
    wildcard_constraints:
        dataset="ucf101|msrvtt",
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/video/report/table_{dataset}.log",
    shell:
        "mkdir -p results/report && printf '%s' {params.rows:q} > results/report/{wildcards.dataset}_rows.yaml && "
        "ptdit report-video --dataset {wildcards.dataset} --rows results/report/{wildcards.dataset}_rows.yaml "
        "--out-dir results > {log} 2>&1"
