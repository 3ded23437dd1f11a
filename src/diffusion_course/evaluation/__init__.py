"""Evaluation: the instrument (the evaluator network), the distances it feeds, and reports on generated samples.

    evaluator.py    a small CNN that reads a shapes image's attributes and gives features for the distances
    perturbations.py  the defects generated images have (noise, blur, colour shift, JPEG-like blocks, resampling)
    eye_labels.py   200 generated samples labelled by eye: does the evaluator read what a person sees?
    distances.py    Fréchet distance, precision/recall, sliced Wasserstein, MMD, PSNR, sharpness
    reports.py      one report per batch of samples: FD / floor, precision, recall, recognised, accuracy
    text_probes.py  which words a text-conditional model responds to
"""
from .distances import frechet_distance, precision_recall  # noqa: F401
from .reports import SampleReport, against_bar, evaluate_samples, fd_floor  # noqa: F401


def __getattr__(name: str):  # names the old `evaluation` module had that now live elsewhere: deprecated
    from .._moved import resolve

    return resolve("evaluation", name)
