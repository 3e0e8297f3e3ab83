"""File names of profiled points: one JSON per (model, resolution) in a folder per device-dtype.
Kept free of torch so that the Snakefile can name its outputs without importing it."""


def model_slug(model_name):
    """'PT-DiT/B-Class' -> 'PT-DiT_B-Class': a file name. Zoo names hold '/' and never '_', so
    model_from_slug maps it back."""
    return model_name.replace("/", "_")


def model_from_slug(slug):
    return slug.replace("_", "/")


def point_filename(model_name, resolution):
    """'PT-DiT/B-Class', 512 -> 'PT-DiT_B-Class_512.json'."""
    return f"{model_slug(model_name)}_{resolution}.json"
