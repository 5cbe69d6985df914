"""The judges: the trained critic, any OpenAI-compatible chat endpoint, and a local transformers model.

Every backend answers `rate(sayings, prompts)` with `Judgement`s and `compare(pairs, prompts)` with
`Verdict`s. A None score or winner is a failure: counted and reported, never replaced by a default.
"""

import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from folksy.errors import FolksyError
from folksy.judging.rubric import (
    SCORES, Judgement, Verdict, pairwise_messages, parse_score, parse_winner, rating_messages, score_probabilities_from_logprobs,
    weighted_score,
)
from folksy.judging.summary import check_failures
from folksy.tracking import redact_url


class CriticJudge:
    """The trained critic (folksy.judging.critic.Critic) as a judge. Pairs are compared by score."""

    def __init__(self, critic, judge_id: str):
        self.critic = critic
        self.judge_id = judge_id

    def rate(self, sayings: list[str], prompts: list[str | None] | None = None, progress: bool = False, what: str = "ratings") -> list[Judgement]:
        scored = self.critic.score(sayings, progress=progress)
        return [Judgement(score, justification=summary, raw=json.dumps(features)) for score, summary, features in scored]

    def compare(self, pairs: list[tuple[str, str]], prompts: list[str | None] | None = None, progress: bool = False, what: str = "comparisons") -> list[Verdict]:
        scores = self.critic.score([s for pair in pairs for s in pair], progress=progress)
        verdicts = []
        for index in range(len(pairs)):
            a, b = scores[2 * index][0], scores[2 * index + 1][0]
            winner = "A" if a > b else "B" if b > a else "tie"
            verdicts.append(Verdict(winner, justification=f"critic scores A {a:.2f}, B {b:.2f}", raw=json.dumps([a, b])))
        return verdicts


@dataclass
class EndpointConfig:
    url: str  # the OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str | None = field(default=None, repr=False)  # from the environment only; never logged
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0  # first wait; doubles on every retry, capped at 30 s
    concurrency: int = 4
    max_tokens: int = 96
    logprobs: bool = True  # asked for; dropped for good if the server rejects the field


class EndpointUnavailable(FolksyError):
    """The endpoint cannot be used at all (down, wrong URL or model, rejected key): no point going on."""


class _ItemFailure(Exception):
    """One request that failed after its retries; counted, never fatal on its own."""


RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
API_KEY_ENV = ("FOLKSY_JUDGE_API_KEY", "OPENAI_API_KEY")  # the only way a key gets in; it is never logged


class EndpointJudge:
    """A judge behind any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, TGI, ...).

    Requests run `concurrency` at a time with a timeout each, and retry with exponential backoff on
    timeouts, 408/429 and 5xx (honouring Retry-After). Answers that cannot be parsed, and requests that
    still fail after their retries, come back as failed items. A server that refuses connections, a 401/403
    or a 404 raise EndpointUnavailable at once. Once more than `max_failure_share` of a batch has failed
    the batch stops with JudgeFailure instead of grinding through the rest.
    """

    def __init__(self, config: EndpointConfig, max_failure_share: float = 0.1, log=print):
        if not config.url.startswith(("http://", "https://")):
            raise FolksyError(f"--endpoint-url '{redact_url(config.url)}': must start with http:// or https://")
        if not config.model:
            raise FolksyError("--endpoint-model: required with --backend endpoint (the model name the server serves)")
        self.config = config
        self.max_failure_share = max_failure_share
        self.log = log
        self.judge_id = f"endpoint:{config.model}"
        self._use_logprobs = config.logprobs
        self._sleep = time.sleep

    # one request -------------------------------------------------------------------------------
    def chat(self, messages: list[dict], logprobs: bool | None = None, stop: threading.Event | None = None) -> dict:
        """POST /chat/completions with retries; returns the decoded JSON body. Once `stop` (the batch's own
        event: batches may run at once, e.g. under mlflow.genai.evaluate) is set, give up at the next try."""
        want_logprobs = self._use_logprobs if logprobs is None else logprobs
        body = {"model": self.config.model, "messages": messages, "temperature": 0.0, "max_tokens": self.config.max_tokens}
        if want_logprobs:
            body.update(logprobs=True, top_logprobs=5)
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(
            self.config.url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        problem, wait_s = "cancelled", None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._sleep(wait_s if wait_s is not None else min(30.0, self.config.backoff_s * 2 ** (attempt - 1)))
            if stop is not None and stop.is_set():  # the batch already failed; don't keep a dead run busy
                raise _ItemFailure("cancelled")
            wait_s = None
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                detail = _error_detail(error)
                if error.code in (400, 422) and want_logprobs:
                    self._use_logprobs = False  # e.g. a server without logprobs support; ask without from now on
                    self.log(f"endpoint rejected the logprobs request (HTTP {error.code}: {detail}); going on without logprobs")
                    return self.chat(messages, logprobs=False, stop=stop)
                if error.code in (401, 403):
                    raise EndpointUnavailable(
                        f"--endpoint-url '{redact_url(self.config.url)}': the server rejected the API key (HTTP {error.code}); "
                        f"set {' or '.join(API_KEY_ENV)}"
                    ) from None
                if error.code not in RETRY_STATUSES:
                    raise EndpointUnavailable(
                        f"--endpoint-url '{redact_url(self.config.url)}' --endpoint-model '{self.config.model}': "
                        f"HTTP {error.code} ({detail})"
                    ) from None
                problem, wait_s = f"http {error.code}", _retry_after(error)
            except (TimeoutError, socket.timeout):
                problem = "timeout"
            except urllib.error.URLError as error:
                reason = error.reason
                if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
                    raise EndpointUnavailable(
                        f"--endpoint-url '{redact_url(self.config.url)}': cannot connect "
                        f"({getattr(reason, 'strerror', None) or reason}); is the server running?"
                    ) from None
                problem = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else f"connection error ({reason})"
            except (ConnectionError, json.JSONDecodeError, UnicodeDecodeError) as error:
                problem = f"bad response ({type(error).__name__})"
        raise _ItemFailure(f"{problem} after {self.config.max_retries + 1} attempts")

    # batches ------------------------------------------------------------------------------------
    def _run_all(self, tasks: list, work, what: str, progress: bool):
        """Run `work(task)` for every task, `concurrency` at a time, stopping once failures exceed the budget."""
        from tqdm.auto import tqdm

        results: list = [None] * len(tasks)
        allowed = math.floor(self.max_failure_share * len(tasks))
        failed = 0
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=max(1, self.config.concurrency))
        bar = tqdm(total=len(tasks), desc=f"judging {what}", unit="item", disable=not progress)
        try:
            pending = {pool.submit(work, task, stop): index for index, task in enumerate(tasks)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    results[index] = future.result()  # EndpointUnavailable propagates from here
                    bar.update(1)
                    if results[index].error:
                        failed += 1
                        self.log(f"judge {what} item {index}: {results[index].error}")
                        if failed > allowed:  # the rest cannot save the batch: fail now, naming what went wrong so far
                            check_failures([r for r in results if r is not None], self.max_failure_share, what, total=len(tasks))
        finally:
            stop.set()  # in-flight requests of this batch give up at their next retry instead of running on
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
        return results

    def _rate_one(self, task, stop) -> Judgement:
        saying, prompt = task
        try:
            response = self.chat(rating_messages(saying, prompt), stop=stop)
        except _ItemFailure as failure:
            return Judgement(None, error=str(failure))
        answer, logprobs = _first_choice(response)
        parsed = parse_score(answer)
        if parsed is None:
            return Judgement(None, raw=answer, error="unparseable")
        score, justification, offset = parsed
        probabilities = score_probabilities_from_logprobs(logprobs, offset) if logprobs else None
        weighted = weighted_score(probabilities) if probabilities else None
        return Judgement(float(weighted if weighted is not None else score), justification, raw=answer)

    def _compare_one(self, task, stop) -> Verdict:
        (a, b), prompt = task
        try:
            response = self.chat(pairwise_messages(a, b, prompt), logprobs=False, stop=stop)
        except _ItemFailure as failure:
            return Verdict(None, error=str(failure))
        answer, _ = _first_choice(response)
        parsed = parse_winner(answer)
        if parsed is None:
            return Verdict(None, raw=answer, error="unparseable")
        return Verdict(parsed[0], parsed[1], raw=answer)

    def rate(self, sayings: list[str], prompts: list[str | None] | None = None, progress: bool = False, what: str = "ratings") -> list[Judgement]:
        tasks = list(zip(sayings, prompts or [None] * len(sayings)))
        return self._run_all(tasks, self._rate_one, what, progress)

    def compare(self, pairs: list[tuple[str, str]], prompts: list[str | None] | None = None, progress: bool = False, what: str = "comparisons") -> list[Verdict]:
        tasks = list(zip(pairs, prompts or [None] * len(pairs)))
        return self._run_all(tasks, self._compare_one, what, progress)


def _first_choice(response: dict) -> tuple[str, list[dict] | None]:
    try:
        choice = response["choices"][0]
        answer = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return "", None
    logprobs = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    return answer, logprobs


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read().decode("utf-8", "replace")
    except Exception:  # the body is only a hint for the message
        body = ""
    try:
        message = json.loads(body).get("error", body)
        body = message.get("message", str(message)) if isinstance(message, dict) else str(message)
    except (ValueError, AttributeError):
        pass
    return " ".join(body.split())[:160] or error.reason or "no detail"


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(30.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


class LocalJudge:
    """Any local transformers chat model as a G-Eval judge: the probability-weighted mean over "1".."5".

    The model is asked the rubric question and its answer is started with "Score: "; the next-token
    distribution over the five digits is the judgement, so no answer can be unparseable. Pairs are asked
    the same way with "Winner: " and compared on P(A) against P(B).
    """

    def __init__(self, model, tokenizer, judge_id: str, batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.judge_id = judge_id
        self.batch_size = batch_size

    def _next_token_probabilities(self, conversations: list[list[dict]], cue: str, options: tuple[str, ...], progress: bool, what: str):
        import torch
        from tqdm.auto import tqdm

        prefix, option_ids = answer_prefix(self.tokenizer, cue, options)
        texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) + prefix for c in conversations]
        rows = []
        for start in tqdm(range(0, len(texts), self.batch_size), desc=f"judging {what}", unit="batch", disable=not progress):
            encoded = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                logits = self.model(**encoded).logits[:, -1, :].float()
            for row in torch.softmax(logits, dim=-1):
                rows.append({option: float(row[ids].sum()) for option, ids in option_ids.items()})
        return rows

    def rate(self, sayings: list[str], prompts: list[str | None] | None = None, progress: bool = False, what: str = "ratings") -> list[Judgement]:
        conversations = [rating_messages(s, p) for s, p in zip(sayings, prompts or [None] * len(sayings))]
        judgements = []
        for probabilities in self._next_token_probabilities(conversations, "Score:", SCORES, progress, what):
            mass = sum(probabilities.values())  # how much of the next token went to a digit at all
            normalised = {s: round(p / mass, 4) for s, p in probabilities.items()} if mass > 0 else {}
            raw = json.dumps({"p": normalised, "digit_mass": float(f"{mass:.3g}")})
            score = weighted_score(probabilities)
            judgements.append(
                Judgement(score, f"probability-weighted over 1-5 (digit mass {mass:.2g})", raw=raw, error=None if score is not None else "no mass on 1-5")
            )
        return judgements

    def compare(self, pairs: list[tuple[str, str]], prompts: list[str | None] | None = None, progress: bool = False, what: str = "comparisons") -> list[Verdict]:
        conversations = [pairwise_messages(a, b, p) for (a, b), p in zip(pairs, prompts or [None] * len(pairs))]
        verdicts = []
        for probabilities in self._next_token_probabilities(conversations, "Winner:", ("A", "B"), progress, what):
            a, b = probabilities["A"], probabilities["B"]
            winner = "A" if a > b else "B" if b > a else "tie"
            verdicts.append(Verdict(winner, f"P(A)={a:.3f}, P(B)={b:.3f}", raw=json.dumps(probabilities)))
        return verdicts


def answer_prefix(tokenizer, cue: str, options: tuple[str, ...]) -> tuple[str, dict[str, list[int]]]:
    """The text that starts the judge's answer ("Score: " or "Score:") and the token id of each option after it.

    Tokenizers differ: SmolLM2's encodes "Score: 4" as [Score, :, " ", 4], GPT-2-style ones as [Score, :, " 4"].
    The prefix is whichever form makes every option exactly one more token.
    """
    for prefix, lead in ((cue + " ", ""), (cue, " ")):
        base = tokenizer.encode(prefix, add_special_tokens=False)
        ids = {}
        for option in options:
            full = tokenizer.encode(prefix + lead + option, add_special_tokens=False)
            if len(full) == len(base) + 1 and full[: len(base)] == base:
                ids[option] = [full[-1]]
        if len(ids) == len(options):
            return prefix, ids
    raise FolksyError(f"the judge model's tokenizer cannot put each of {', '.join(options)} in one token after '{cue}'")


def build_judge(backend, endpoint_url, endpoint_model, local_model, critic_uri, timeout, max_retries, concurrency, max_failure_share, corpus, log=print):
    """The judge object for `backend` (critic, endpoint, local), and the id of the critic run trained on
    the fly, if the critic had to be trained (needs an active MLflow run)."""
    import os

    if backend == "endpoint":
        api_key = next((os.environ[name] for name in API_KEY_ENV if os.environ.get(name)), None)
        config = EndpointConfig(endpoint_url, endpoint_model, api_key, timeout, max_retries, concurrency=concurrency)
        return EndpointJudge(config, max_failure_share, log=log), None
    if backend == "local":
        from folksy.base_models import load_model_and_tokenizer, resolve_base_model

        resolved = resolve_base_model(local_model)
        model, tokenizer = load_model_and_tokenizer(resolved.path)
        return LocalJudge(model, tokenizer, f"local:{local_model}@{resolved.revision[:12]}"), None

    from folksy.judging.critic_registry import DEFAULT_CRITIC_URI, critic_exists, critic_recipe, load_critic, registered_recipe, train_and_log_critic

    trained_run = None
    if critic_uri.startswith("models:/") and not critic_exists(critic_uri):
        if critic_uri != DEFAULT_CRITIC_URI:
            raise FolksyError(f"--critic-uri '{critic_uri}': no such registered model version")
        log(f"judge: {critic_uri} does not exist yet; training a critic now (about two minutes)")
        _, trained_run = train_and_log_critic(corpus, log=log)
    elif critic_uri == DEFAULT_CRITIC_URI and registered_recipe(critic_uri) != critic_recipe(corpus):
        # the default follows the code and data: a critic from older code or labels would judge by stale rules
        log(f"judge: {critic_uri} was trained from another recipe (code, labelled sets or corpus changed); training a new critic")
        _, trained_run = train_and_log_critic(corpus, log=log)
    critic, judge_id = load_critic(critic_uri)
    return CriticJudge(critic, judge_id), trained_run
