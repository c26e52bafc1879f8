"""The streaming engine: windows -> Weighter -> tracker -> aggregated labels, for many streams."""
from streamdiar.engine.diarizer import Diarizer, Stream, StreamClosed
from streamdiar.engine.labels import Segment
from streamdiar.engine.stream import Update

__all__ = ["Diarizer", "Segment", "Stream", "StreamClosed", "Update"]
