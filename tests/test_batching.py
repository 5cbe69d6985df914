"""Concurrent predict calls share generations (folksy.batching), and each caller still gets its own answers."""

import threading
import time

import pytest

from folksy.batching import RequestBatcher


class Recorder:
    """A `run` that answers each prompt with itself upper-cased and records every call; the first call waits
    until the test lets it go, so that the other callers queue behind it deterministically."""

    def __init__(self, fail_when=None):
        self.calls, self.entered, self.gate, self.fail_when = [], threading.Event(), threading.Event(), fail_when

    def __call__(self, prompts, values):
        self.calls.append((list(prompts), dict(values)))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.gate.wait(30)
        if self.fail_when and self.fail_when(prompts):
            raise RuntimeError("out of memory, say")
        return [prompt.upper() for prompt in prompts]


def call_concurrently(batcher, recorder, requests):
    """requests[0] starts first and holds the generation; the rest queue behind it before it is let go."""
    answers, errors = [None] * len(requests), [None] * len(requests)

    def call(index):
        try:
            answers[index] = batcher(*requests[index])
        except Exception as error:  # noqa: BLE001 - what each caller got is the subject
            errors[index] = error

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(requests))]
    threads[0].start()
    assert recorder.entered.wait(30)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 30
    while len(batcher._queue) < len(requests) - 1 - sum(1 for _, values in requests[1:] if values.get("seed") is not None):
        assert time.monotonic() < deadline, "the callers never queued"
        time.sleep(0.01)
    time.sleep(0.05)  # seeded callers wait on the generation itself, not in the queue
    recorder.gate.set()
    for thread in threads:
        thread.join(30)
    return answers, errors


def test_callers_that_wait_share_one_generation_per_sampling_and_get_their_own_answers():
    recorder = Recorder()
    batcher = RequestBatcher(recorder)
    warm, cool = {"temperature": 0.8, "seed": None}, {"temperature": 0.3, "seed": None}
    requests = [([f"p{index}a", f"p{index}b"], warm if index % 3 else cool) for index in range(8)]
    answers, errors = call_concurrently(batcher, recorder, requests)

    assert errors == [None] * 8
    assert answers == [[prompt.upper() for prompt in prompts] for prompts, _ in requests]  # each its own, in order
    # the first alone, then every waiting request of one sampling (5 x 2 prompts), then of the other (2 x 2)
    sizes = [len(prompts) for prompts, _ in recorder.calls]
    assert sizes[0] == 2 and sorted(sizes[1:]) == [4, 10]
    for prompts, values in recorder.calls:  # never two samplings in one generation
        assert {str(requests[int(prompt[1:-1])][1]) for prompt in prompts} == {str(values)}
    assert (batcher.generations, batcher.requests) == (3, 8)


def test_a_seeded_request_is_generated_alone_and_a_batch_is_capped():
    recorder = Recorder()
    batcher = RequestBatcher(recorder, max_prompts=4)
    plain = {"temperature": 0.8, "seed": None}
    seeded = {"temperature": 0.8, "seed": 7}
    requests = [(["p0a"], plain), (["p1a", "p1b"], seeded), (["p2a", "p2b"], seeded)]
    requests += [([f"p{index}a", f"p{index}b"], plain) for index in range(3, 7)]
    answers, errors = call_concurrently(batcher, recorder, requests)

    assert errors == [None] * 7 and answers == [[prompt.upper() for prompt in prompts] for prompts, _ in requests]
    # the same seed twice, and still each alone: a seed reproduces a sample only if nothing shares its draws
    assert (["p1a", "p1b"], seeded) in recorder.calls and (["p2a", "p2b"], seeded) in recorder.calls
    assert all(len(prompts) <= 4 for prompts, _ in recorder.calls)
    assert sorted(len(prompts) for prompts, _ in recorder.calls) == [1, 2, 2, 4, 4]


def test_an_error_in_a_shared_generation_reaches_every_caller_in_it_and_no_other():
    recorder = Recorder(fail_when=lambda prompts: "p1a" in prompts)
    batcher = RequestBatcher(recorder)
    plain, other = {"temperature": 0.8, "seed": None}, {"temperature": 0.5, "seed": None}
    requests = [(["p0a"], plain), (["p1a"], plain), (["p2a"], plain), (["p3a"], other)]
    answers, errors = call_concurrently(batcher, recorder, requests)

    assert answers[0] == ["P0A"] and answers[3] == ["P3A"]
    assert [str(error) for error in errors[1:3]] == ["out of memory, say"] * 2 and errors[0] is None and errors[3] is None
    assert batcher(["again"], plain) == ["AGAIN"]  # the batcher is not left holding anything


@pytest.mark.slow
def test_concurrent_predicts_answer_as_one_at_a_time_and_the_switch_turns_sharing_off(tiny_qwen2_dir, tmp_path, monkeypatch):
    import mlflow

    from folksy.pyfunc_model import model_kwargs

    mlflow.pyfunc.save_model(str(tmp_path / "model"), **model_kwargs(tiny_qwen2_dir, tmp_path / "scratch"))
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    prompts = [f"Tell me something about {word}." for word in ("rain", "a goat", "the county fair", "fences", "dust", "a long winter")]
    greedy = {"temperature": 0.0, "max_new_tokens": 10}
    alone = [model.predict([prompt], params=greedy)[0] for prompt in prompts]

    together = [None] * len(prompts)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, model.predict([prompts[i]], params=greedy)[0])) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert together == alone
    batcher = model.unwrap_python_model().batcher
    assert batcher is not None and batcher.requests == 2 * len(prompts)

    monkeypatch.setenv("FOLKSY_SHARED_GENERATION", "0")
    separate = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert separate.unwrap_python_model().batcher is None
    assert separate.predict(prompts[:2], params=greedy) == alone[:2]
