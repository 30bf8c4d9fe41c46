"""Word pieces to entities, as transformers' token-classification pipeline decodes them."""

import numpy as np


class EntityDecoder:
    """transformers' `TokenClassificationPipeline.gather_pre_entities`,
    `aggregate` and `group_entities` for one text, on numpy scores."""

    def __init__(self, tokenizer, id2label, strategy):
        self.tokenizer, self.id2label, self.strategy = tokenizer, id2label, strategy

    def __call__(self, sentence, ids, offsets, special_tokens_mask, scores):
        pre_entities = []
        for index, token_scores in enumerate(scores):
            if special_tokens_mask[index]:
                continue
            word = self.tokenizer.id_to_token(ids[index])
            start, end = (int(v) for v in offsets[index])
            word_ref = sentence[start:end]
            is_subword = len(word) != len(word_ref)
            if ids[index] == self.tokenizer.unk_token_id:
                word, is_subword = word_ref, False
            pre_entities.append(
                {
                    "word": word,
                    "scores": token_scores,
                    "start": start,
                    "end": end,
                    "index": index,
                    "is_subword": is_subword,
                }
            )
        if self.strategy in ("none", "simple"):
            entities = []
            for pre in pre_entities:
                best = int(pre["scores"].argmax())
                entities.append(
                    {
                        "entity": self.id2label[str(best)],
                        "score": pre["scores"][best],
                        "index": pre["index"],
                        "word": pre["word"],
                        "start": pre["start"],
                        "end": pre["end"],
                    }
                )
        else:
            entities = self.aggregate_words(pre_entities)
        if self.strategy == "none":
            return [entity | {"score": float(entity["score"])} for entity in entities]
        return self.group_entities(entities)

    def aggregate_words(self, pre_entities):
        words, group = [], None
        for pre in pre_entities:
            if group is None:
                group = [pre]
            elif pre["is_subword"]:
                group.append(pre)
            else:
                words.append(self.aggregate_word(group))
                group = [pre]
        if group is not None:
            words.append(self.aggregate_word(group))
        return words

    def aggregate_word(self, pieces):
        if self.strategy == "first":
            scores = pieces[0]["scores"]
        elif self.strategy == "max":
            scores = max(pieces, key=lambda piece: piece["scores"].max())["scores"]
        else:
            scores = np.nanmean(np.stack([piece["scores"] for piece in pieces]), axis=0)
        best = int(scores.argmax())
        return {
            "entity": self.id2label[str(best)],
            "score": scores[best],
            "word": self.tokenizer.tokens_to_string([piece["word"] for piece in pieces]),
            "start": pieces[0]["start"],
            "end": pieces[-1]["end"],
        }

    def group_entities(self, entities):
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = entity_tag(entity["entity"])
                _, last_tag = entity_tag(current[-1]["entity"])
                if tag == last_tag and bi != "B":
                    current.append(entity)
                    continue
                groups.append(self.group(current))
            current = [entity]
        if current:
            groups.append(self.group(current))
        return groups

    def group(self, entities):
        score = np.mean(np.nanmean([entity["score"] for entity in entities]))
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(score),
            "word": self.tokenizer.tokens_to_string([entity["word"] for entity in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }


def entity_tag(name):
    """(B or I, tag) of a label, as the pipeline's `get_tag`."""
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name
