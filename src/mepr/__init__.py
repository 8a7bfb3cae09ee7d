"""mepr: Multimodal Emotion and Personality Recognition (SSL-MEPR as a workflow)."""

__version__ = "0.1.0"
