"""streamdiar: streaming, real-time speaker diarization.

    import streamdiar
    diarizer = streamdiar.Diarizer()              # shipped weights, default config
    stream = diarizer.open_stream("meeting")
    update = stream.push(samples)                 # 16 kHz mono float32, any block size
    for segment in update.final: ...              # never revised
    update.provisional                            # who is speaking in the newest audio
    stream.finish()
"""
from streamdiar.audio import SAMPLE_RATE, load_audio
from streamdiar.config import Config, load_config
from streamdiar.engine import Diarizer, Segment, Stream, Update

__version__ = "0.1.0"

__all__ = ["SAMPLE_RATE", "Config", "Diarizer", "Segment", "Stream", "Update", "__version__", "load_audio", "load_config"]
