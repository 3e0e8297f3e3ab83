# The ImageNet comparison (issue 6): prepare data -> encode once -> feature network and reference ->
# train -> sample -> evaluate -> report. Which rows exist, and where their files live, is decided in
# evaluation/report/imagenet_plan.py; each rule is one `ptdit` command.

wildcard_constraints:
    dataset="[^/]+",
    model="[^/_]+(_[^/_]+)?",
    objective="ddpm|sit",
    variant="[^/]+",
    steps="[0-9]+",
    seed="(_seed[1-9][0-9]*)?",
    sampler="ddpm|ddim|sde|ode",
    nsteps="[0-9]+",
    cfg="[0-9.]+",
    tome="(_tome[0-9.]+)?",


rule prepare_standin:
    output:
        f"{DATA_DIR}/images/STANDIN",
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        source=DATA.get("standin_source", "mnist"),
        train=DATA.get("train_per_class", 400),
        val=DATA.get("val_per_class", 100),
        idx_dir=f"--idx-dir {shlex.quote(DATA['fashion_mnist_dir'])}" if DATA.get("fashion_mnist_dir") else "",
    conda:
        "../envs/ptdit.yaml"
    log:
        f"logs/{DATASET}/prepare_standin.log",
    shell:
        "ptdit prepare-standin {params.out} --source {params.source} --train-per-class {params.train} "
        "--val-per-class {params.val} {params.idx_dir} > {log} 2>&1"


rule encode:
    input:
        standin_marker,
    output:
        f"{DATA_DIR}/encoded/meta.json",
    params:
        split=train_split,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        vae=f"--vae {DATA['vae']}" if DATA.get("vae") else "",
        size=DATA["image_size"],
    threads: 2
    # every training waits for it: scheduled before the extractor, which would otherwise hold a core
    # for minutes while this job waits for two
    priority: 10
    resources:
        gpu=IMAGENET["train"].get("gpus", 0) and 1,
    conda:
        "../envs/ptdit.yaml"
    log:
        f"logs/{DATASET}/encode.log",
    shell:
        "ptdit encode {params.split} {params.out} {params.vae} --image-size {params.size} "
        "--num-workers 0 > {log} 2>&1"


rule train_extractor:
    input:
        standin_marker,
    output:
        f"results/extractor/{DATASET}/small_cnn.pt",
    params:
        split=train_split,
        epochs=IMAGENET["extractor"].get("epochs", 5),
        size=DATA["image_size"],
    threads: 1
    conda:
        "../envs/ptdit.yaml"
    log:
        f"logs/{DATASET}/train_extractor.log",
    shell:
        "ptdit train-extractor {params.split} {output} --image-size {params.size} --epochs {params.epochs} "
        "> {log} 2>&1"


rule reference:
    input:
        standin_marker,
    output:
        f"results/reference/{DATASET}/val.npz",
    params:
        split=val_split,
        size=DATA["image_size"],
    conda:
        "../envs/ptdit.yaml"
    log:
        f"logs/{DATASET}/reference.log",
    shell:
        "ptdit make-reference {params.split} {output} --image-size {params.size} > {log} 2>&1"


# Only final.pt is declared: Snakemake deletes the declared output of a failed job, and the
# checkpoints beside it survive, so a rerun resumes (ptdit train resumes any run folder).
rule train:
    input:
        f"{DATA_DIR}/encoded/meta.json",
    output:
        "results/runs/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/final.pt",
    params:
        run_dir=lambda wildcards, output: os.path.dirname(output[0]),
        data=lambda wildcards, input: os.path.dirname(input[0]),
        model=lambda wc: model_from_slug(wc.model),
        seed=lambda wc: int(wc.seed[len("_seed"):] or 0),   # ptdit/train.py: initial weights, data order, noise
        overrides=overrides_args,
        launch=launcher("train"),
        batch=IMAGENET["train"]["batch_size"],
        lr=IMAGENET["train"]["lr"],
        ema=IMAGENET["train"]["ema_decay"],
        ckpt=IMAGENET["train"]["ckpt_every"],
        log_every=IMAGENET["train"].get("log_every", 10),
        objective_options=lambda wildcards: " ".join(
            f"-o {k}={v}" for k, v in IMAGENET["train"].get("objective_options", {}).get(wildcards.objective, {}).items()),
    threads: IMAGENET["train"].get("threads", 1)
    resources:
        gpu=IMAGENET["train"].get("gpus", 0),
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/{dataset}/train/{model}_{objective}_{variant}_s{steps}{seed}.log",
    benchmark:
        "logs/{dataset}/train/{model}_{objective}_{variant}_s{steps}{seed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} train {params.run_dir} --data {params.data} "
        "--model '{params.model}' {params.overrides} --objective {wildcards.objective} {params.objective_options} "
        "--steps {wildcards.steps} --seed {params.seed} "
        "--batch-size {params.batch} --lr {params.lr} --ema-decay {params.ema} --ckpt-every {params.ckpt} "
        "--log-every {params.log_every} --num-workers 0 --no-progress > {log} 2>&1"


rule sample:
    input:
        "results/runs/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/final.pt",
    output:
        npz="results/samples/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}{tome}.npz",
        grid="results/samples/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}{tome}.png",
    params:
        launch=launcher("sample"),
        tome=tome_args,
        num=IMAGENET["sample"]["num_samples"],
        batch=IMAGENET["sample"]["batch_size"],
        options=lambda wildcards: " ".join(f"-s {k}={v}" for k, v in
                                           IMAGENET["sample"].get("sampler_options", {}).get(wildcards.sampler, {}).items()),
    threads: IMAGENET["sample"].get("threads", 1)
    resources:
        gpu=IMAGENET["sample"].get("gpus", 0),
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/{dataset}/sample/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}{tome}.log",
    benchmark:
        "logs/{dataset}/sample/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}{tome}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} sample {input} {output.npz} --num-samples {params.num} "
        "--batch-size {params.batch} --num-steps {wildcards.nsteps} --sampler {wildcards.sampler} "
        "--cfg-scale {wildcards.cfg} --labels balanced {params.options} {params.tome} > {log} 2>&1 && "
        "python -m evaluation.report.sample_grid grid {output.npz} {output.grid} >> {log} 2>&1"


rule evaluate:
    input:
        samples="results/samples/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}{tome}.npz",
        extractor=extractor_input,
        reference=reference_path(),
    output:
        "results/eval/{dataset}/{model}/{objective}/{variant}/s{steps}{seed}/{sampler}{nsteps}_cfg{cfg}{tome}.json",
    params:
        extractor=extractor_args,
        device="cuda" if IMAGENET["sample"].get("gpus", 0) else "cpu",
        bootstrap=IMAGENET.get("evaluate", {}).get("bootstrap", 200),
    threads: 1
    resources:
        gpu=1 if IMAGENET["sample"].get("gpus", 0) else 0,
    conda:
        "../envs/ptdit.yaml"
    log:
        "logs/{dataset}/eval/{model}_{objective}_{variant}_s{steps}{seed}_{sampler}{nsteps}_cfg{cfg}{tome}.log",
    shell:
        "ptdit evaluate {input.samples} --reference {input.reference} {params.extractor} --device {params.device} "
        "--cache-dir results/reference/cache --bootstrap {params.bootstrap} --out {output} > {log} 2>&1"


rule samples_figure:
    input:
        [row.samples(DATASET)[:-4] + ".png" for row in table_rows(IMAGENET)],
    output:
        report("results/figures/samples.png", caption="../report/samples.rst", category="ImageNet comparison"),
    params:
        grids=lambda wildcards, input: " ".join(
            shlex.quote(f"{row_label(row)}={path}") for row, path in zip(table_rows(IMAGENET), input)
        ),
    log:
        "logs/report/samples_figure.log",
    conda:
        "../envs/ptdit.yaml"
    shell:
        "python -m evaluation.report.sample_grid figure {output} {params.grids} > {log} 2>&1"


rule table_imagenet:
    input:
        evals=eval_paths(table_rows(IMAGENET), DATASET),
        samples="results/figures/samples.png",
    output:
        csv=report("results/table_imagenet.csv", caption="../report/table_imagenet.rst", category="ImageNet comparison"),
        md="results/table_imagenet.md",
        html=report("results/table_imagenet.html", caption="../report/table_imagenet.rst", category="ImageNet comparison"),
        figures=[
            report(f"results/figures/{name}.png", caption=f"../report/{name}.rst", category="ImageNet comparison")
            for name in ("fid_vs_gflops", "training_loss")
        ] + [f"results/figures/{name}.pdf" for name in ("fid_vs_gflops", "training_loss")],
    log:
        "logs/report/table_imagenet.log",
    params:
        rows=lambda wildcards: rows_yaml(table_rows(IMAGENET)),
    conda:
        "../envs/ptdit.yaml"
    shell:
        "mkdir -p results/report && printf '%s' {params.rows:q} > results/report/imagenet_rows.yaml && "
        "ptdit report-imagenet --rows results/report/imagenet_rows.yaml --out-dir results > {log} 2>&1"


rule table_ablation:
    input:
        eval_paths(ablation_rows(IMAGENET), DATASET),
    output:
        csv=report("results/table_ablation.csv", caption="../report/table_ablation.rst", category="Ablations"),
        md="results/table_ablation.md",
        html=report("results/table_ablation.html", caption="../report/table_ablation.rst", category="Ablations"),
    log:
        "logs/report/table_ablation.log",
    params:
        rows=lambda wildcards: rows_yaml(ablation_rows(IMAGENET)),
    conda:
        "../envs/ptdit.yaml"
    shell:
        "mkdir -p results/report && printf '%s' {params.rows:q} > results/report/ablation_rows.yaml && "
        "ptdit report-ablation --rows results/report/ablation_rows.yaml --out-dir results > {log} 2>&1"


# Issue 16: FID against compression ratio. The rows (evaluation/report/imagenet_plan.py compression_rows)
# reuse the run folders of equal table and ablation rows; the reference rows are table rows.
rule table_compression:
    input:
        eval_paths(compression_rows(IMAGENET) + compression_reference_rows(IMAGENET), DATASET),
    output:
        csv=report("results/table_compression.csv", caption="../report/table_compression.rst", category="Compression ratio"),
        md="results/table_compression.md",
        html=report("results/table_compression.html", caption="../report/table_compression.rst",
                    category="Compression ratio"),
        png=report("results/figures/fid_vs_compression.png", caption="../report/fid_vs_compression.rst",
                   category="Compression ratio"),
        pdf="results/figures/fid_vs_compression.pdf",
    log:
        "logs/report/table_compression.log",
    params:
        rows=lambda wildcards: yaml_text(compression_report_rows(IMAGENET)),
    conda:
        "../envs/ptdit.yaml"
    shell:
        "mkdir -p results/report && printf '%s' {params.rows:q} > results/report/compression_rows.yaml && "
        "ptdit report-compression --rows results/report/compression_rows.yaml --out-dir results > {log} 2>&1"
