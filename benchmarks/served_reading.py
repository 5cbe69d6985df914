"""A blind reading of what models serve, side by side with the template engine, on prompts you wrote.

    python benchmarks/served_reading.py --model sft=runs:/<train run>/model --model dpo=runs:/<dpo run>/model \\
        [--model rp=runs:/<train run>/model --repeat-penalty rp=1.5] [--model b1=... --best-of b1=1]
        [--model all=... --picker 'all=readings-*.jsonl,check-*.jsonl'] --prompts benchmarks/reading/prompts-2026-12-07.jsonl --seeds 7,8 --reading reading.jsonl --key key.json

Each model answers every prompt once per seed exactly as `mlflow.pyfunc.load_model(uri).predict` does by
default (folksy.best_of.served_picks: the model's own best_of, its bundled picker critic, the served
dtype). The engine (`corpus.engine.respond`) answers each prompt once per seed too. It prints how many
shapes (folksy.best_of.saying_shape) each source's answers take, how many the top three hold, and how
many share a content word with their request (a rough on-topic count). The reading file holds
`id, request, saying` lines, shuffled, one line per distinct (request, saying): give it alone to readers.
The key (--key) says which sources wrote each id. `--score reading-marks.jsonl ...` turns readers'
`{"id", "score"}` files into Good / Okay / Bad counts per source (label: the readers' mean, rounded half up).
"""

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path


# request words that say "give me a saying", not what it should be about, and function words
ASKING = set("""tell give saying sayings proverb proverbs folksy something about what what's would please write share some
wisdom line favorite your pretend you're which kind that with from good need couple folk might does might say says
three few people there the and for but not are was who how you his her its one all can get got has had any out
own way into than then them they this just like when will been were did don't ain't it's""".split())


def mentions_topic(request: str, saying: str) -> bool:
    """A rough on-topic check: the saying shares a content word of the request (plural 's' ignored)."""
    def stems(text):
        return {word.lower().rstrip("s") for word in re.findall(r"[A-Za-z']+", text) if len(word) >= 3} - {w.rstrip("s") for w in ASKING}

    return bool(stems(request) & stems(saying))


def candidate_picks(uri: str, texts: list[str], bonus: float = 0.0, picker_dir=None, best_of: int | None = None, **sampling) -> tuple[list[list[str]], int]:
    """The served candidates (the same samples as served_picks draws for a seed; `best_of` of them, the model's
    own best_of unless given), each pick the highest of a picker's raw score plus `bonus` for sharing a content
    word with its request (mentions_topic). The picker is the model's own, or the critic saved in `picker_dir`.
    Levers measured here, not served."""
    import tempfile

    from folksy.best_of import critic_scores, pick_best, saying_shape, served_settings
    from folksy.generation import SayingGenerator, download_hf_dir, inference_dtype
    from folksy.judging.critic import Critic

    with tempfile.TemporaryDirectory(prefix="folksy-model-") as scratch:
        hf_dir = download_hf_dir(uri, scratch)
        served, critic = served_settings(hf_dir.parent.parent)
        generator = SayingGenerator.from_pretrained(str(hf_dir), dtype=inference_dtype())
    critic = Critic.load(picker_dir) if picker_dir else critic
    best_of = best_of or served
    candidates = generator.generate(texts, num_return_sequences=best_of, progress=True, **sampling)
    on_topic = [mentions_topic(text, saying) for text, options in zip(texts, candidates) for saying in options]
    raw = critic_scores(critic)
    return pick_best(candidates, lambda sayings: [score + bonus * topical for score, topical in zip(raw(sayings), on_topic)], shape=saying_shape), best_of


def write_reading(options) -> None:
    from folksy.best_of import saying_shape, served_picks
    from folksy.corpus.engine import respond
    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.judging.critic_registry import picker_critic_dir

    prompts = [json.loads(line) for line in options.prompts.read_text().splitlines() if line.strip()]
    texts = [p["prompt"] for p in prompts]
    answers = []  # (prompt index, source, saying)
    sampling = {"temperature": options.temperature} if options.temperature is not None else {}
    penalties, best_ofs = dict(options.repeat_penalty), dict(options.best_of)
    pickers = {name: picker_critic_dir(PROJECT_ROOT / CORPUS, patterns=tuple(globs.split(","))) for name, globs in options.picker}
    for seed in options.seeds:
        for name, uri in options.model:
            penalty = {"repeat_penalty": penalties[name]} if name in penalties else {}
            if options.topic_bonus or name in pickers:
                picks, best_of = candidate_picks(uri, texts, options.topic_bonus, pickers.get(name), best_ofs.get(name), seed=seed, **sampling, **penalty)
            else:
                picks, best_of = served_picks(uri, texts, best_of=best_ofs.get(name), seed=seed, progress=True, **sampling, **penalty)
            answers += [(i, f"{name} best-of-{best_of} s{seed}", options_[0]) for i, options_ in enumerate(picks)]
        answers += [(i, f"engine s{seed}", respond(text, seed=seed * 1000 + i)) for i, text in enumerate(texts)]
    shapes: dict[str, Counter] = {}  # how concentrated each source's answers are on a few shapes
    on_topic: Counter = Counter()
    for i, source, saying in answers:
        shapes.setdefault(source, Counter())[saying_shape(saying)] += 1
        on_topic[source] += mentions_topic(texts[i], saying)
    for source, counts in shapes.items():
        top = sum(n for _, n in counts.most_common(3))
        print(f"{source:32s} {len(counts):3d} shapes in {sum(counts.values())} answers; the top three hold {top}; "
              f"{on_topic[source]} share a word with the request")
    lines: dict[tuple[int, str], list[str]] = {}
    for i, source, saying in answers:
        lines.setdefault((i, saying), []).append(source)
    items = list(lines.items())
    random.Random(options.seeds[0]).shuffle(items)
    reading, key = [], {}
    for number, ((i, saying), sources) in enumerate(items, 1):
        reading.append({"id": number, "request": texts[i], "saying": saying})
        key[str(number)] = {"sources": sources, "kind": prompts[i].get("kind", "")}
    options.reading.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in reading))
    options.key.write_text(json.dumps(key, indent=1) + "\n")
    print(f"{len(reading)} lines for blind reading -> {options.reading}; key -> {options.key}")


def score(options) -> None:
    from folksy.judging.rubric import agreement, band, reader_label

    key = json.loads(options.key.read_text())
    marks: dict[str, list[int]] = {}
    for path in options.score:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                marks.setdefault(str(row["id"]), []).append(int(row["score"]))
    bands: dict[str, Counter] = {}
    for number, entry in key.items():
        if number not in marks:
            continue
        for source in entry["sources"]:
            name = source.rsplit(" s", 1)[0]
            bands.setdefault(name, Counter())[band(reader_label(marks[number]))] += 1
    for name, counts in sorted(bands.items()):
        total = sum(counts.values())
        print(f"{name:28s} Good {counts['Good']:3d}  Okay {counts['Okay']:3d}  Bad {counts['Bad']:3d}  of {total}")
    pairs = [m for m in marks.values() if len(m) == 2]
    if pairs:
        print(agreement(pairs))
    if options.picker or options.judge_critic:
        critic_agreement(options, marks)


def critic_agreement(options, marks: dict[str, list[int]]) -> None:
    """How each critic (--picker name=globs, and --judge-critic: the judge's default critic) ranks the read
    lines: Spearman of its raw score against the readers' mean, over every line and over lines read 3 or
    better, and how often its band (>= 3.5 / 2.5-3.5 / < 2.5 on the calibrated score) is the readers'."""
    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.judging.critic import Critic
    from folksy.judging.critic_registry import default_critic_dir, picker_critic_dir
    from folksy.judging.rubric import band, reader_label
    from folksy.judging.summary import spearman

    lines = [json.loads(line) for line in options.reading.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if str(line["id"]) in marks]
    texts, means = [line["saying"] for line in lines], [sum(marks[str(line["id"])]) / len(marks[str(line["id"])]) for line in lines]
    labels = [band(reader_label(marks[str(line["id"])])) for line in lines]
    critics = [(name, picker_critic_dir(PROJECT_ROOT / CORPUS, patterns=tuple(globs.split(",")))) for name, globs in options.picker]
    if options.judge_critic:
        critics.append(("judge's critic", default_critic_dir(PROJECT_ROOT / CORPUS)))
    usable = [i for i, mean in enumerate(means) if mean >= 3]
    for name, directory in critics:
        critic = Critic.load(directory)
        raw = critic.raw(texts)
        calibrated = critic.calibrate(raw).tolist()
        raw = raw.tolist()
        bands = ["Good" if x >= 3.5 else "Okay" if x >= 2.5 else "Bad" for x in calibrated]
        same = sum(a == b for a, b in zip(bands, labels))
        print(f"{name:28s} Spearman {spearman(raw, means):.3f} over {len(texts)} lines, "
              f"{spearman([raw[i] for i in usable], [means[i] for i in usable]):.3f} over the {len(usable)} read 3+; "
              f"same band {same} of {len(texts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], type=lambda v: tuple(v.split("=", 1)), help="name=model URI, repeatable")
    parser.add_argument("--prompts", type=Path, help="prompts JSONL ({prompt, kind} per line)")
    parser.add_argument("--seeds", type=lambda v: [int(s) for s in v.split(",")], default=[7])
    parser.add_argument("--temperature", type=float, default=None, help="sample at this temperature [default: the model's own]")
    parser.add_argument("--repeat-penalty", action="append", default=[], type=lambda v: (v.split("=", 1)[0], float(v.split("=", 1)[1])), help="name=penalty: sample that --model with decode's repeat_penalty (repeatable; a lever measured here)")
    parser.add_argument("--best-of", action="append", default=[], type=lambda v: (v.split("=", 1)[0], int(v.split("=", 1)[1])), help="name=k: serve that --model best-of-k instead of its own best_of (1: its first sample, no picker)")
    parser.add_argument("--picker", action="append", default=[], type=lambda v: tuple(v.split("=", 1)), help="name=glob[,glob]: pick that --model's candidates with a picker critic trained on the reading files matching the globs (in benchmarks/reading) instead of its bundled one")
    parser.add_argument("--topic-bonus", type=float, default=0.0, help="pick by the picker's raw score plus this for a saying that shares a word with its request")
    parser.add_argument("--reading", type=Path, help="where to write the shuffled reading file")
    parser.add_argument("--key", type=Path, required=True, help="which source wrote each id (written, or read by --score)")
    parser.add_argument("--judge-critic", action="store_true", help="with --score and --reading: also rank the read lines with the judge's default critic")
    parser.add_argument("--score", nargs="+", default=None, help="readers' {id, score} JSONL files: print the bands per source")
    options = parser.parse_args()
    if options.score:
        score(options)
    elif not (options.model and options.prompts and options.reading):
        parser.error("--model, --prompts and --reading are needed to write a reading (or --score to count one)")
    else:
        write_reading(options)


if __name__ == "__main__":
    main()
