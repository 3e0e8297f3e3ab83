"""Quality metrics and the feature extraction they share: Frechet distance and streamed statistics
(frechet.py), Inception score, improved precision/recall, ADM's Inception-v3 (inception.py), the
interface every feature network follows (feature_extractor.py), sample/reference readers (npz_images.py,
reference.py), class_accuracy.py (samples the classifier assigns to their label), bootstrap.py (95 %
intervals of every metric) and evaluate.py (an image .npz -> one JSON); for video FVD with I3D (fvd.py,
i3d.py), CLIPSIM, video arrays (video_reference.py), video_correlation.py and video_sample_checks.py (do
the samples move and look like clips) and video_evaluate.py. The stand-in networks trained here are in
evaluation/extractors/, costs in evaluation/efficiency/, tables and sample pictures in evaluation/report/,
and the `ptdit evaluate` / `evaluate-video` verbs in ptdit/cli/."""
