"""folksy.lineage against a real SQLite tracking store."""

from folksy.chat import to_prompt_completion
from folksy.lineage import log_split_datasets, split_frame


def split_rows(count):
    pairs = [{"input": f"Tell me something about rain number {i}.", "output": f"Rain {i} falls on the just.", "meta_template": "T1", "input_type": "topic"} for i in range(count)]
    return [to_prompt_completion(pair) for pair in pairs]


def test_a_whole_split_links_the_prepare_runs_dataset_and_a_subsample_is_named_for_itself(tracking_uri):
    import mlflow
    from mlflow import MlflowClient

    from folksy.tracking import configure

    configure()
    rows = split_rows(3)
    with mlflow.start_run(run_name="prepare") as prepare:
        mlflow.log_param("corpus", "corpus/training_pairs.jsonl")
        mlflow.log_metric("rows_train", 3)
        mlflow.log_input(mlflow.data.from_pandas(split_frame(rows), source="corpus/training_pairs.jsonl", name="folksy-train", targets="output"), context="training")
    [prepared] = MlflowClient().get_run(prepare.info.run_id).inputs.dataset_inputs

    with mlflow.start_run(run_name="train") as whole:
        log_split_datasets(prepare.info.run_id, {"train": rows})
    with mlflow.start_run(run_name="train") as part:
        log_split_datasets(prepare.info.run_id, {"train": rows[:2]})

    [linked] = MlflowClient().get_run(whole.info.run_id).inputs.dataset_inputs
    assert (linked.dataset.name, linked.dataset.digest) == ("folksy-train", prepared.dataset.digest)
    [subsample] = MlflowClient().get_run(part.info.run_id).inputs.dataset_inputs
    assert subsample.dataset.name == "folksy-train-2-of-3" and subsample.dataset.digest != prepared.dataset.digest
    assert {tag.key: tag.value for tag in subsample.tags}["mlflow.data.context"] == "training"
