"""Speakers for simulation (with the train / held-out split), their voice cohort, and writing
conversations to disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from streamdiar.audio import SAMPLE_RATE
from streamdiar.features import FrameFeaturizer
from streamdiar.features.vad import CHUNK
from streamdiar.speakers.enroll import speech_embeddings
from streamdiar.train.simulate import Conversation, Utterance, load_speakers, speech_mask, split_speakers


def vad_masks(featurizer: FrameFeaturizer, signals: list[np.ndarray]) -> list[np.ndarray]:
    """10-ms speech masks of whole signals, all signals batched through the VAD together."""
    states = []
    for audio in signals:
        state = featurizer.new_state()
        state.append(np.concatenate([audio, np.zeros(CHUNK, dtype=np.float32)]))
        states.append(state)
    featurizer.advance_vad(states)
    return [speech_mask(s.vad_probs, CHUNK, audio.size) for s, audio in zip(states, signals)]


def speaker_split(featurizer: FrameFeaturizer, speakers_dir: str | Path, held_out: int, seed: int
                  ) -> tuple[list[Utterance], list[Utterance]]:
    """(training, held-out) utterances with their speech masks; the split depends only on seed."""
    utterances = load_speakers(speakers_dir)
    if len({u.speaker for u in utterances}) < held_out + 10:
        raise ValueError(f"{speakers_dir}: too few speakers to hold {held_out} out")
    for utt, mask in zip(utterances, vad_masks(featurizer, [u.audio for u in utterances])):
        utt.speech = mask
    return split_speakers(utterances, held_out, seed)


def voice_cohort(featurizer: FrameFeaturizer, utterances: list[Utterance]) -> np.ndarray:
    """(voices, EMBED_DIM): each voice's mean GE2E vector over its speech frames, L2-normalised.
    Shipped with the checkpoint: the tracker scores slots against these other voices."""
    by_voice: dict[str, list[np.ndarray]] = {}
    for utt, feats in zip(utterances, featurizer.whole_signals([u.audio for u in utterances])):
        by_voice.setdefault(utt.speaker, []).append(speech_embeddings(feats))
    vectors = np.stack([np.concatenate(parts).mean(axis=0) for _, parts in sorted(by_voice.items())])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def write_conversations(folder: str | Path, conversations: list[Conversation], names: list[str],
                        fmt: str = "wav", rttm_name: str = "reference.rttm") -> None:
    """Audio files plus one RTTM of them all (uri = file stem) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for conv, name in zip(conversations, names):
        if fmt == "flac":
            sf.write(folder / f"{name}.flac", conv.audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        else:
            sf.write(folder / f"{name}.wav", conv.audio, SAMPLE_RATE, subtype="PCM_16")
        lines.extend(conv.rttm(name))
    (folder / rttm_name).write_text("\n".join(lines) + "\n")
