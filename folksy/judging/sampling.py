"""Which test prompts a judge run asks the model: a seeded sample spread evenly over the input types."""

import random

from folksy.chat import user_prompt


def stratified_sample(rows: list[dict], size: int, seed: int, key: str = "input_type") -> list[dict]:
    """Up to `size` rows with distinct prompts, spread evenly over the values of `key` (round robin), seeded.

    The order interleaves the groups, so any prefix of the sample (the A/B's first pairs) is spread too.
    """
    groups: dict[str, list[dict]] = {}
    seen = set()
    for row in rows:
        prompt = user_prompt(row)
        if prompt not in seen:
            seen.add(prompt)
            groups.setdefault(str(row.get(key, "unknown")), []).append(row)
    rng = random.Random(seed)
    queues = []
    for name in sorted(groups):
        rng.shuffle(groups[name])
        queues.append(groups[name])
    picked: list[dict] = []
    depth = 0
    while len(picked) < size and any(depth < len(queue) for queue in queues):
        picked += [queue[depth] for queue in queues if depth < len(queue)][: size - len(picked)]
        depth += 1
    return picked


