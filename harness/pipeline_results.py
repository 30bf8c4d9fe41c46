"""A pipeline result (nested lists and dicts) as two golden outputs: its
structure with every score replaced by its position in walk order, as the
UTF-8 bytes of canonical JSON (labels, tokens, words, offsets: exact), and the
scores in that order (float32, within `SCORE_ATOL`)."""

import json

import numpy as np

SCORE_ATOL = 1e-5
SCORE_REASON = "float32 scores (softmax of logits that agree to ~1e-6) on CPU: rounding only"
STRUCTURE_REASON = "labels, token ids, token strings, words, sequences and character offsets: exact equality"


def split_scores(result):
    """(structure as uint8 JSON bytes, scores as float32) of a pipeline result."""
    scores = []

    def walk(value):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "score":
                    out[key] = f"<score {len(scores)}>"
                    scores.append(float(item))
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    structure = json.dumps(walk(result), sort_keys=True, ensure_ascii=False)
    return np.frombuffer(structure.encode("utf-8"), np.uint8).copy(), np.asarray(scores, np.float32)


def structure_text(structure):
    return bytes(np.asarray(structure, np.uint8)).decode("utf-8")
