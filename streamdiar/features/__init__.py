"""Frame-level features: GE2E speaker embeddings, Silero VAD and level, computed incrementally."""
from streamdiar.features.frames import (FEATURE_DIM, SPEECH_PROBABILITY, VAD_MAX_COLUMN, VAD_MEAN_COLUMN, FeatureState,
                                        FrameFeaturizer)
from streamdiar.features.speaker_encoder import SpeakerEncoder
from streamdiar.features.vad import SileroVAD

__all__ = ["FEATURE_DIM", "SPEECH_PROBABILITY", "VAD_MAX_COLUMN", "VAD_MEAN_COLUMN", "FeatureState", "FrameFeaturizer", "SpeakerEncoder", "SileroVAD"]
