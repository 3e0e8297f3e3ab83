"""SiT's interpolant objectives and samplers (willisma/SiT transport/)."""

from .path import GVPPath, LinearPath, VPPath
from .transport import Sampler, Transport


def create_transport(path_type="Linear", prediction="velocity", loss_weight=None,
                     train_eps=None, sample_eps=None):
    """SiT's create_transport (transport/__init__.py): same arguments, defaults and eps rules.

    path_type: "Linear" | "GVP" | "VP"; prediction: "velocity" | "score" | "noise" | "data" (ours,
    see prediction.py: its eps rules are those of score / noise);
    loss_weight: None | "velocity" | "likelihood".
    eps rules: VP: train 1e-5, sample 1e-3; Linear/GVP with score or noise: 1e-3 and 1e-3;
    Linear/GVP with velocity: 0 and 0 (stable everywhere). As in SiT, the sample_eps default
    is applied when *train_eps* is None (a quirk kept for equal results). Note that SiT's
    train.py passes its argparse defaults train_eps=1e-5, sample_eps=1e-3 explicitly.
    """
    if path_type == "VP":
        new_train, new_sample = 1e-5, 1e-3
    elif prediction != "velocity":
        new_train, new_sample = 1e-3, 1e-3
    else:
        return Transport(prediction=prediction, path_type=path_type, loss_weight=loss_weight,
                         train_eps=0, sample_eps=0)
    if train_eps is None:
        train_eps, sample_eps = new_train, new_sample
    return Transport(prediction=prediction, path_type=path_type, loss_weight=loss_weight,
                     train_eps=train_eps, sample_eps=sample_eps)


__all__ = ["create_transport", "Transport", "Sampler", "LinearPath", "GVPPath", "VPPath"]
