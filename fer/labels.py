"""The seven FER2013 classes, in the dataset's 0-6 order, used everywhere in the project."""

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Valence used by the review charts: which classes count as pleasant or unpleasant affect.
POSITIVE_LABELS: tuple[str, ...] = ("happy",)
NEGATIVE_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
