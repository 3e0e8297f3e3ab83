"""The plan of the ImageNet comparison: which (model, objective, variant, steps, sampler, cfg) rows the
config asks for, and where each stage's files live. Torch-free, so the Snakefile parses fast.

A row trains `model` with `objective` for `train_steps`, samples with `sampler` for `sample_steps` at
guidance `cfg`, and evaluates. `variant` names an ablation switch on top of the row's overrides:
"base" (none) or "<switch>-<value>", e.g. "modules-no_giim", "compression_ratio-1x4x4".

    results/runs/{dataset}/{model}/{objective}/{variant}/s{steps}/final.pt        (+ checkpoints/)
    results/samples/{dataset}/{model}/{objective}/{variant}/s{steps}/{sampler}{n}_cfg{cfg}.npz
    results/eval/{dataset}/{model}/{objective}/{variant}/s{steps}/{sampler}{n}_cfg{cfg}.json
"""

from dataclasses import dataclass, field

from evaluation.efficiency.point_files import model_slug

SWITCHES = ("modules", "proxy_mode", "injection", "compression_ratio")


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

    @property
    def run_key(self):
        return (model_slug(self.model), self.objective, self.variant, int(self.train_steps))

    def stem(self, dataset):
        model, objective, variant, steps = self.run_key
        return f"{dataset}/{model}/{objective}/{variant}/s{steps}"

    def run_dir(self, dataset):
        return f"results/runs/{self.stem(dataset)}"

    def sample_name(self):
        return f"{self.sampler}{self.sample_steps}_cfg{format_cfg(self.cfg)}"

    def samples(self, dataset):
        return f"results/samples/{self.stem(dataset)}/{self.sample_name()}.npz"

    def eval_json(self, dataset):
        return f"results/eval/{self.stem(dataset)}/{self.sample_name()}.json"


def format_cfg(cfg):
    """1.0 -> '1.0', 1.5 -> '1.5': one spelling per value, so paths are stable."""
    return f"{float(cfg):g}" if float(cfg) != int(cfg) else f"{int(cfg)}.0"


def variant_name(switch, value):
    if switch not in SWITCHES:
        raise ValueError(f"unknown ablation switch '{switch}'; choose one of {SWITCHES}")
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
    return {switch: value}


def make_row(spec, section, variant="base", extra=None):
    """A Row from one config entry; overrides = model_defaults + the entry's + the variant's."""
    train, sample = section["train"], section["sample"]
    overrides = {**section.get("model_defaults", {}), **spec.get("overrides", {}), **(extra or {}),
                 **variant_overrides(variant)}
    return Row(model=spec["model"], objective=spec["objective"],
               train_steps=int(spec.get("train_steps", train["steps"])),
               sampler=spec.get("sampler", sample["sampler"][spec["objective"]]),
               sample_steps=int(spec.get("sample_steps", sample["steps"])),
               cfg=float(spec.get("cfg", sample["cfg"])), variant=variant, overrides=overrides)


def table_rows(section):
    """Rows of results/table_imagenet.csv, in config order."""
    return [make_row(spec, section) for spec in section["rows"]]


def ablation_rows(section):
    """Rows of results/table_ablation.csv: the table row it names (model, objective), then one switch
    changed at a time. The shape comes from that row, so one place sets it (config lists replace,
    dicts merge across config files)."""
    ablation = section.get("ablation")
    if not ablation:
        return []
    matches = [spec for spec in section["rows"] if (spec["model"], spec["objective"]) == (ablation["model"], ablation["objective"])
               and "train_steps" not in spec]
    if not matches:
        raise ValueError(f"imagenet.ablation names {ablation['model']} / {ablation['objective']}, which is not a row of "
                         f"imagenet.rows (without train_steps); add that row or change the ablation's model/objective")
    base = {**matches[0], **{k: ablation[k] for k in ("sampler", "sample_steps", "cfg") if k in ablation}}
    rows = [make_row(base, section)]
    for switch, values in ablation["settings"].items():
        rows += [make_row(base, section, variant_name(switch, value)) for value in values]
    return rows


def run_index(section):
    """run_key -> Row, checking that rows sharing a run agree on its overrides."""
    index = {}
    for row in table_rows(section) + ablation_rows(section):
        known = index.setdefault(row.run_key, row)
        if known.overrides != row.overrides:
            raise ValueError(f"two rows train {'/'.join(map(str, row.run_key))} with different overrides "
                             f"({known.overrides} vs {row.overrides}); give one of them another train_steps "
                             f"or variant")
    return index


def report_rows(rows, section):
    """The rows.yaml entries `ptdit report-imagenet` reads."""
    dataset = section["dataset"]
    return [{"model": r.model, "objective": r.objective, "train_steps": r.train_steps, "sampler": r.sampler,
             "sample_steps": r.sample_steps, "cfg": r.cfg, "eval_json": r.eval_json(dataset),
             "run_dir": r.run_dir(dataset), "model_overrides": r.overrides, "dataset": dataset,
             "scale": section["scale"]} for r in rows]


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
