"""The plan of the ImageNet comparison: which (model, objective, variant, steps, sampler, cfg) rows the
config asks for, and where each stage's files live. Torch-free, so the Snakefile parses fast.

A row trains `model` with `objective` for `train_steps`, samples with `sampler` for `sample_steps` at
guidance `cfg`, and evaluates. `variant` names an ablation switch on top of the row's overrides:
"base" (none) or "<switch>-<value>", e.g. "modules-no_giim", "compression_ratio-1x4x4".

    results/runs/{dataset}/{model}/{objective}/{variant}/s{steps}/final.pt        (+ checkpoints/)
    results/samples/{dataset}/{model}/{objective}/{variant}/s{steps}/{sampler}{n}_cfg{cfg}.npz
    results/eval/{dataset}/{model}/{objective}/{variant}/s{steps}/{sampler}{n}_cfg{cfg}.json

Training seeds (issue 15): a row may list `seeds` (else `imagenet.train.seeds`, else [0]). Seed 0 keeps the
paths above, so runs made before seeds existed are reused; seed N > 0 trains in `s{steps}_seed{N}/` (and
samples and evaluates there). The table reports the mean and standard deviation over the row's seeds.

Token-merging rows (config `imagenet.tome`, issue 16) sample the checkpoint of the table row they name
with ToMe-DiT (baselines/tome.py) at each ratio: no training of their own, `_tome{ratio}` after the
sample name, and the model name `<DiT name>-ToMe<ratio>` (registered for ratios 0.25 and 0.5).

Compression rows (config `imagenet.compression`, issue 16) train the named PT-DiT row at each ratio and
dynamic schedule (variant "dynamic_ratio-1x2x2@0.6+1x4x4@1", ptdit/dynamic_ratio.py): a ratio equal to
the row's own window is that row (variant base), the others carry the variant names the ablation gives
them, so a run that a table or ablation row also asks for has one folder and trains once.
"""

import dataclasses
from dataclasses import dataclass, field

from evaluation.efficiency.point_files import model_slug
from ptdit.dynamic_ratio import schedule_from_name, schedule_name

SWITCHES = ("modules", "proxy_mode", "injection", "compression_ratio", "dynamic_ratio")


@dataclass(frozen=True)
class Row:
    model: str
    objective: str
    train_steps: int
    sampler: str
    sample_steps: int
    cfg: float
    variant: str = "base"
    overrides: dict = field(default_factory=dict, compare=False, hash=False)
    tome_ratio: float = 0.0      # > 0: sample the run of `run_model` with token merging at this ratio
    run_model: str = ""          # the trained model whose run this row samples; "" = model
    seed: int = 0                # the training seed of this row's paths
    seeds: tuple = (0,)          # every training seed of the table row (seed is one of them)

    @property
    def run_key(self):
        return (model_slug(self.run_model or self.model), self.objective, self.variant, int(self.train_steps))

    def stem(self, dataset):
        model, objective, variant, steps = self.run_key
        return f"{dataset}/{model}/{objective}/{variant}/s{steps}{seed_suffix(self.seed)}"

    def per_seed(self):
        """This row once per training seed: the runs, samples and evals the table row averages."""
        return [dataclasses.replace(self, seed=s) for s in self.seeds]

    def first_seed(self):
        """This row at its first seed only (ablation and compression rows: single-seed, see ablation_rows)."""
        return dataclasses.replace(self, seed=self.seeds[0], seeds=(self.seeds[0],))

    def run_dir(self, dataset):
        return f"results/runs/{self.stem(dataset)}"

    def sample_name(self):
        tome = f"_tome{self.tome_ratio:g}" if self.tome_ratio else ""
        return f"{self.sampler}{self.sample_steps}_cfg{format_cfg(self.cfg)}{tome}"

    def samples(self, dataset):
        return f"results/samples/{self.stem(dataset)}/{self.sample_name()}.npz"

    def eval_json(self, dataset):
        return f"results/eval/{self.stem(dataset)}/{self.sample_name()}.json"


def seed_suffix(seed):
    """0 -> '' (the paths of runs made before seeds existed), 2 -> '_seed2'."""
    return f"_seed{int(seed)}" if int(seed) else ""


def row_seeds(spec, section):
    """A row's own `seeds`, else imagenet.train.seeds, else [0]; distinct non-negative integers."""
    seeds = spec.get("seeds", section["train"].get("seeds", [0]))
    ok = (isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds)
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds))
    if not ok:
        raise ValueError(f"imagenet row {spec.get('model')} / {spec.get('objective')}: seeds {seeds!r} must be a "
                         "non-empty list of distinct integers >= 0, e.g. seeds: [0, 1, 2]")
    return tuple(seeds)


def format_cfg(cfg):
    """1.0 -> '1.0', 1.5 -> '1.5': one spelling per value, so paths are stable."""
    return f"{float(cfg):g}" if float(cfg) != int(cfg) else f"{int(cfg)}.0"


def variant_name(switch, value):
    if switch not in SWITCHES:
        raise ValueError(f"unknown ablation switch '{switch}'; choose one of {SWITCHES}")
    if switch == "dynamic_ratio":
        return f"{switch}-{schedule_name(value)}"
    if isinstance(value, (list, tuple)):
        value = "x".join(str(int(v)) for v in value)
    return f"{switch}-{value}"


def variant_overrides(variant):
    """'compression_ratio-1x4x4' -> {'compression_ratio': [1, 4, 4]}; 'base' -> {}."""
    if variant == "base":
        return {}
    switch, _, value = variant.partition("-")
    if switch not in SWITCHES or not value:
        raise ValueError(f"cannot read ablation variant '{variant}'; expected base or <switch>-<value> "
                         f"with switch in {SWITCHES}")
    if switch == "compression_ratio":
        return {switch: [int(v) for v in value.split("x")]}
    if switch == "dynamic_ratio":
        return {switch: schedule_from_name(value)}
    return {switch: value}


def make_row(spec, section, variant="base", extra=None):
    """A Row from one config entry; overrides = model_defaults + the entry's + the variant's."""
    train, sample = section["train"], section["sample"]
    overrides = {**section.get("model_defaults", {}), **spec.get("overrides", {}), **(extra or {}),
                 **variant_overrides(variant)}
    seeds = row_seeds(spec, section)
    return Row(model=spec["model"], objective=spec["objective"],
               train_steps=int(spec.get("train_steps", train["steps"])),
               sampler=spec.get("sampler", sample["sampler"][spec["objective"]]),
               sample_steps=int(spec.get("sample_steps", sample["steps"])),
               cfg=float(spec.get("cfg", sample["cfg"])), variant=variant, overrides=overrides,
               seed=seeds[0], seeds=seeds)


def table_rows(section):
    """Rows of results/table_imagenet.csv, in config order, then the token-merging rows."""
    return [make_row(spec, section) for spec in section["rows"]] + tome_rows(section)


def named_row(section, model, objective, key):
    """The imagenet.rows entry (without train_steps) with this model and objective, which `key` names."""
    matches = [spec for spec in section["rows"] if (spec["model"], spec["objective"]) == (model, objective)
               and "train_steps" not in spec]
    if not matches:
        raise ValueError(f"{key} names {model} / {objective}, which is not a row of imagenet.rows (without "
                         f"train_steps); add that row or change {key}")
    return matches[0]


def tome_model(model, ratio):
    """'DiT-S/2', 0.25 -> 'DiT-S/2-ToMe0.25' (ptdit/registry.py)."""
    return f"{model}-ToMe{float(ratio):g}"


def tome_rows(section):
    """ToMe at each ratio on the checkpoint of the table row that `imagenet.tome` names (its model,
    objective, no train_steps of its own): the same run, sampled with merging."""
    tome = section.get("tome")
    if not tome or not tome.get("ratios"):
        return []
    base = make_row(named_row(section, tome["model"], tome["objective"], "imagenet.tome"), section)
    return [Row(model=tome_model(base.model, r), objective=base.objective, train_steps=base.train_steps,
                sampler=base.sampler, sample_steps=base.sample_steps, cfg=base.cfg, overrides=base.overrides,
                tome_ratio=float(r), run_model=base.model, seed=base.seed, seeds=base.seeds) for r in tome["ratios"]]


def ablation_rows(section):
    """Rows of results/table_ablation.csv: the table row it names (model, objective), then one switch
    changed at a time. The shape comes from that row, so one place sets it (config lists replace,
    dicts merge across config files). Single-seed: the named row's first seed (its run is the table's),
    so seeds multiply the table's trainings only, not the ablation's."""
    ablation = section.get("ablation")
    if not ablation:
        return []
    spec = named_row(section, ablation["model"], ablation["objective"], "imagenet.ablation")
    base = {**spec, **{k: ablation[k] for k in ("sampler", "sample_steps", "cfg") if k in ablation}}
    rows = [make_row(base, section)]
    for switch, values in ablation["settings"].items():
        rows += [make_row(base, section, variant_name(switch, value)) for value in values]
    return [row.first_seed() for row in rows]


def built_window(model, overrides):
    """A PT-DiT row's compression ratio as built: its override, else the model's default (ptdit/pt_dit.py:
    8 x 8 windows per frame group). Imports the model registry, as the plan's other PT-DiT readers do."""
    from ptdit import get_spec

    return tuple(get_spec(model).build_config(**(overrides or {})).window)


def compression_rows(section):
    """PT-DiT rows of results/table_compression.csv: the row `imagenet.compression` names (its shape and
    training), for each objective, at each ratio and each dynamic schedule. Single-seed, as ablation_rows."""
    comp = section.get("compression")
    if not comp:
        return []
    sampling = {k: comp[k] for k in ("sample_steps", "cfg") if k in comp}
    rows = []
    for objective in comp["objectives"]:
        spec = {**named_row(section, comp["model"], objective, "imagenet.compression"), **sampling}
        own = built_window(spec["model"], make_row(spec, section).overrides)
        for ratio in comp["ratios"]:
            variant = "base" if tuple(int(r) for r in ratio) == own else variant_name("compression_ratio", ratio)
            rows.append(make_row(spec, section, variant))
        rows += [make_row(spec, section, variant_name("dynamic_ratio", s)) for s in comp.get("dynamic_ratios", [])]
    return [row.first_seed() for row in rows]


def compression_reference_rows(section):
    """The table rows that draw the reference line of the compression figure (DiT, SiT): their own runs."""
    comp = section.get("compression") or {}
    return [make_row(named_row(section, r["model"], r["objective"], "imagenet.compression.reference"), section).first_seed()
            for r in comp.get("reference", [])]


def compression_report_rows(section):
    """The rows.yaml entries of `ptdit report-compression`: PT-DiT rows (role pt-dit), then the reference rows."""
    return ([{**r, "role": "pt-dit"} for r in report_rows(compression_rows(section), section)]
            + [{**r, "role": "reference"} for r in report_rows(compression_reference_rows(section), section)])


def run_index(section):
    """run_key -> Row, checking that rows sharing a run agree on its overrides."""
    index = {}
    for row in table_rows(section) + ablation_rows(section) + compression_rows(section):
        if row.tome_ratio:
            continue             # samples another row's run
        known = index.setdefault(row.run_key, row)
        if known.overrides != row.overrides:
            raise ValueError(f"two rows train {'/'.join(map(str, row.run_key))} with different overrides "
                             f"({known.overrides} vs {row.overrides}); give one of them another train_steps "
                             f"or variant")
    return index


def row_entry(r, dataset, table_dataset, scale, run_dir):
    """The rows.yaml entry the image and video reports share: the row, its first seed's eval JSON and run
    folder, and for several seeds `seeds` and the `eval_jsons` of all of them (the report averages them)."""
    entry = {"model": r.model, "objective": r.objective, "train_steps": r.train_steps, "sampler": r.sampler,
             "sample_steps": r.sample_steps, "cfg": r.cfg, "eval_json": r.eval_json(dataset), "run_dir": run_dir,
             "model_overrides": r.overrides, "dataset": table_dataset, "scale": scale}
    if len(r.seeds) > 1:
        entry.update(seeds=list(r.seeds), eval_jsons=[s.eval_json(dataset) for s in r.per_seed()])
    return entry


def report_rows(rows, section):
    """The rows.yaml entries `ptdit report-imagenet` reads (row_entry, plus the variant and the options a
    dynamic-ratio row's cost depends on)."""
    dataset = section["dataset"]
    entries = []
    for r in rows:
        # ToMe rows: the DiT row plots the run
        entry = row_entry(r, dataset, dataset, section["scale"], None if r.tome_ratio else r.run_dir(dataset))
        entry["variant"] = r.variant
        # the sampler's grid decides a dynamic-ratio row's mean GFLOPs (evaluation/efficiency/dynamic_ratio_cost.py)
        options = {"objective_options": section["train"].get("objective_options", {}).get(r.objective),
                   "sampler_options": section["sample"].get("sampler_options", {}).get(r.sampler)}
        entry.update({k: v for k, v in options.items() if v})
        entries.append(entry)
    return entries


def eval_paths(rows, dataset):
    """Every eval JSON a table of these rows reads: each row at each of its seeds."""
    return [s.eval_json(dataset) for row in rows for s in row.per_seed()]


def missing_paths(section):
    """Config keys a real-data run needs and that are unset: data, VAE, feature weights, reference.
    design.md: every path is a config key with no machine-specific default."""
    missing = []
    data = section["data"]
    if data["kind"] == "imagenet":
        missing += [f"imagenet.data.{k}" for k in ("train_dir", "vae") if not data.get(k)]
    if section["extractor"]["kind"] == "inception" and not section["extractor"].get("weights"):
        missing.append("imagenet.extractor.weights")
    if data["kind"] == "imagenet" and not section.get("reference"):
        missing.append("imagenet.reference")
    return missing


def check_classifier(section):
    """imagenet.extractor.classifier_weights (an ImageNet-1k ResNet-50, class_acc) fits only 1000-class ImageNet
    samples: on other labels its argmax would be compared with labels of other classes."""
    data, classes = section["data"]["kind"], section["model_defaults"].get("num_classes")
    if section["extractor"].get("classifier_weights") and (data != "imagenet" or classes != 1000):
        raise ValueError(f"imagenet.extractor.classifier_weights is an ImageNet-1k classifier, but the data are "
                         f"{data} with imagenet.model_defaults.num_classes {classes}; set it to null (the stand-in's "
                         f"class_acc comes from its own CNN) or use ImageNet data with 1000 classes")
