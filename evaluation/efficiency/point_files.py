"""File names of profiled points: one JSON per (model, resolution, compiled) in a folder per device-dtype.
Kept free of torch so that the Snakefile can name its outputs without importing it."""

# A torch.compile'd point is its own measurement beside the eager one at the same batches, so it gets
# its own file: MODEL_PX-compiled.json next to MODEL_PX.json.
COMPILED_SUFFIX = "-compiled"


def model_slug(model_name):
    """'PT-DiT/B-Class' -> 'PT-DiT_B-Class': a file name. Zoo names hold '/' and never '_', so
    model_from_slug maps it back."""
    return model_name.replace("/", "_")


def model_from_slug(slug):
    return slug.replace("_", "/")


def point_filename(model_name, resolution, compiled=False):
    """'PT-DiT/B-Class', 512 -> 'PT-DiT_B-Class_512.json'; compiled -> 'PT-DiT_B-Class_512-compiled.json'."""
    return f"{model_slug(model_name)}_{resolution}{COMPILED_SUFFIX if compiled else ''}.json"
