"""`fer`: the vision core of Psychopathology Assistant: find faces, classify their expression, on LiteRT.

    import fer
    for face in fer.analyze(frame_bgr):             # uint8 frame from OpenCV (gray, BGR or RGB with color="rgb")
        print(face.box, face.dominant, face.probabilities)

    pipeline = fer.VideoPipeline.load()             # video: track the patient, one FrameReading per frame
    reading = pipeline.process(frame_bgr, t=seconds)   # reading.face: box, probabilities, quality (or None)

    clf = fer.EmotionClassifier.load()             # the shipped model (fer/models/fer_edge_int8.tflite + .json)
    probs = clf.predict(faces)                     # uint8 (N, H, W) -> float32 (N, 7), LABELS order

No database and no UI here: `pi_agent` and `app` build on this package.
"""

from fer.analysis import FaceResult, analyze, default_classifier, default_detector
from fer.classifier import DEFAULT_MODEL_PATH, EmotionClassifier
from fer.detection import (BlazeFaceDetector, BlazeFaceShortDetector, FaceBox, FaceDetector, HaarFaceDetector,
                           make_detector)
from fer.errors import FerError, InvalidImageError, InvalidModelError, ModelNotFoundError, RuntimeNotFoundError
from fer.labels import LABELS, NEGATIVE_LABELS, POSITIVE_LABELS
from fer.metadata import ModelMetadata, read_metadata
from fer.preprocess import face_crops, margin_crop
from fer.runtime import default_runtime, find_runtime
from fer.stream import FrameMetrics, MetricsMonitor, ProbabilitySmoother
from fer.tracking import FaceTracker, TrackStep
from fer.video import (FaceQuality, FrameReading, PatientFace, StageTimes, VideoAnalysis, VideoError,
                       VideoIncompleteError, VideoPipeline, analyze_video)

__all__ = [
    "BlazeFaceShortDetector", "FaceQuality", "FaceTracker", "FrameReading", "PatientFace", "StageTimes", "TrackStep",
    "VideoAnalysis", "VideoError", "VideoIncompleteError", "VideoPipeline", "analyze_video",
    "BlazeFaceDetector", "DEFAULT_MODEL_PATH", "EmotionClassifier", "FaceBox", "FaceDetector", "FaceResult",
    "FerError", "FrameMetrics", "HaarFaceDetector", "InvalidImageError", "InvalidModelError", "LABELS",
    "MetricsMonitor", "ModelMetadata", "ModelNotFoundError", "NEGATIVE_LABELS", "POSITIVE_LABELS",
    "ProbabilitySmoother", "RuntimeNotFoundError", "analyze", "default_classifier", "default_detector",
    "default_runtime", "face_crops", "find_runtime", "make_detector", "margin_crop", "read_metadata",
]
