"""The stand-in feature networks this suite trains, because Inception, I3D and CLIP mean little on 32x32
stand-in data: small_classifier.py (image CNN: FID/sFID/IS/precision/recall, frame FID),
video_classifier.py (3-D CNN: FVD and video IS) and video_clip.py (a domain CLIP for CLIPSIM). They
follow the interface of evaluation/metrics/feature_extractor.py and are used by the metrics in
evaluation/metrics/; `ptdit train-extractor`, `train-video-extractor` and `train-video-clip` are in
ptdit/cli/. Beside them, imagenet_classifier.py loads (never trains) torchvision's ResNet-50 from a local
file, for the class accuracy of ImageNet samples."""
