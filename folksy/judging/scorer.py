"""Any folksy judge as an MLflow GenAI scorer."""

from folksy.judging.rubric import JudgeFailure


def make_genai_scorer(judge, name: str = "folksy_saying_quality"):
    """The judge as an `mlflow.genai` scorer for `mlflow.genai.evaluate(data, scorers=[...])`.

    It rates `outputs` (the saying) on the 1-5 rubric; `inputs` may carry the prompt as a string or as
    {"prompt": ...}. A failed item comes back as a Feedback with an error, never as a score.
    """
    from mlflow.entities import AssessmentSource, Feedback
    from mlflow.genai.scorers import scorer

    source = AssessmentSource(source_type="LLM_JUDGE" if not judge.judge_id.startswith("critic") else "CODE", source_id=judge.judge_id)

    @scorer(name=name)
    def folksy_judge(inputs=None, outputs=None) -> Feedback:
        prompt = inputs.get("prompt") if isinstance(inputs, dict) else inputs
        try:
            [judgement] = judge.rate([str(outputs or "")], [prompt if isinstance(prompt, str) else None])
        except JudgeFailure as failure:  # one item is its own batch: its failure is this feedback's error
            return Feedback(name=name, error=str(failure), source=source)
        return Feedback(name=name, value=float(judgement.score), rationale=judgement.justification, source=source)

    return folksy_judge
