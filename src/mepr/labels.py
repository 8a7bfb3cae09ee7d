"""Label vocabularies shared by every stage (order matters: it is the model's output order)."""

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
)
TRAITS: tuple[str, ...] = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "non_neuroticism",
)
MODALITIES: tuple[str, ...] = ("face", "body", "scene", "audio", "text")
IMAGE_MODALITIES: tuple[str, ...] = ("face", "body", "scene")
TASKS: tuple[str, ...] = ("emotion", "personality")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
