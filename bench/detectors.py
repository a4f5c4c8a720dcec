"""Throughput of the detection pipeline on ~1 KB messages, per core.

Run: ``.venv/bin/python bench/detectors.py [--corpus tests/corpus/messages.jsonl]
[--seconds 3] [--lexicon extra.toml ...]``. Messages come from the labelled corpus
(benign and flagged, every language), each padded to about 1 KB with friendly project
talk in front (so a request can sit in the last sentence); all languages' lexicons are
loaded (plus any ``--lexicon`` file, e.g. to try a larger lexicon).
Prints the machine, then messages per second of CPU time on one core for ``normalize``
alone, for the rules alone, and for the whole pipeline as a default config runs it
(``Analyzer.assess``: normalise, every detector, the model's blend, intent), over all
messages, then for English and non-English ones, and benign and flagged ones, apart. CPU time is
counted, not wall time, but a busy machine still slows it: the load average is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.lexicon import load_lexicon
from onplatform.detectors.model import load_model
from onplatform.detectors.normalize import normalize
from onplatform.detectors.registry import build, discover

PADDING = {
    "en": "Thanks again for the quick turnaround on the last batch, the team loved it. ",
    "es": "Gracias otra vez por la entrega rápida del último lote, al equipo le encantó. ",
    "pt": "Obrigado de novo pela entrega rápida do último lote, a equipe adorou. ",
    "fr": "Merci encore pour la livraison rapide du dernier lot, l'équipe a adoré. ",
    "de": "Danke nochmal für die schnelle Lieferung der letzten Runde, das Team war begeistert. ",
    "ru": "Ещё раз спасибо за быструю сдачу последней части, команде очень понравилось. ",
    "zh": "再次感谢你上一批交付得这么快，团队非常喜欢。",
    "ar": "شكرًا مرة أخرى على التسليم السريع للدفعة الأخيرة، أعجب الفريق كثيرًا. ",
}


def load_labelled(corpus: Path, size: int) -> list[tuple[str, str, str]]:
    """(language, label, text) triples, each text padded in front to about ``size``
    characters."""
    messages = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        language = str(record.get("language") or "en")
        pad = PADDING.get(language, PADDING["en"])
        text = str(record["text"])
        while len(text) < size:
            text = pad + text
        label = str(record.get("label") or "benign")
        messages.append((language, label, text[-size:] if len(text) > size * 2 else text))
    return messages


def rate(function: Callable[[str], object], texts: Sequence[str], seconds: float) -> float:
    """Messages per CPU second, calling ``function`` over ``texts`` round-robin."""
    for text in texts[:50]:
        function(text)  # warm the caches once, as a running daemon would have
    done = 0
    start = time.process_time()  # CPU time of this process: other load does not count
    deadline = start + seconds
    while time.process_time() < deadline:
        for text in texts:
            function(text)
        done += len(texts)
    return done / (time.process_time() - start)


def machine() -> str:
    """Cores, CPU model, Python and load: what the figures below depend on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"machine: nproc {cores}, {model}, Python {platform.python_version()}"
        f" ({platform.python_implementation()}), load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("tests/corpus/messages.jsonl"))
    parser.add_argument("--size", type=int, default=1024, help="characters per message")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument(
        "--lexicon", type=Path, action="append", default=[], help="an extra lexicon file"
    )
    args = parser.parse_args()

    print(machine())
    started = time.perf_counter()
    lexicon = load_lexicon(args.lexicon)
    detectors = build(discover(lexicon), {})
    rules_only = Analyzer(detectors, lexicon)
    analyzer = Analyzer(detectors, lexicon, model=load_model())
    load_ms = (time.perf_counter() - started) * 1000
    messages = load_labelled(args.corpus, args.size)
    matcher = lexicon.matcher
    terms = sum(len(t) for t in lexicon.terms.values())
    print(
        f"lexicons: {', '.join(lexicon.languages)} ({terms} terms in {len(lexicon.terms)} groups,"
        f" {matcher.regex_terms} as regexes; loaded in {load_ms:.0f} ms)"
    )
    benign = sum(label == "benign" for _, label, _ in messages)
    print(
        f"messages: {len(messages)} ({benign} benign),"
        f" mean {sum(len(t) for _, _, t in messages) / len(messages):.0f} characters"
    )
    # A mailbox is mostly ordinary project talk; the corpus is half requests, whose
    # evidence, context and intent cost more: both halves are shown apart.
    slices = {
        "all": [t for _, _, t in messages],
        "en": [t for lang, _, t in messages if lang == "en"],
        "non-en": [t for lang, _, t in messages if lang != "en"],
        "benign": [t for _, label, t in messages if label == "benign"],
        "flagged": [t for _, label, t in messages if label != "benign"],
    }
    for name, texts in slices.items():
        normalize_rate = rate(normalize, texts, args.seconds)
        rules_rate = rate(rules_only.assess, texts, args.seconds)
        assess_rate = rate(analyzer.assess, texts, args.seconds)
        print(
            f"{name:<7} normalize {normalize_rate:>8.0f} msg/s   rules {rules_rate:>8.0f} msg/s"
            f"   full pipeline, rules + model (assess) {assess_rate:>8.0f} msg/s   per core"
            f" ({1e6 / assess_rate:.0f} us/msg)"
        )


if __name__ == "__main__":
    main()
