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


def test_metrics_about_the_model_show_on_the_logged_model_and_all_stay_on_the_run(tracking_uri, tmp_path):
    import textwrap

    import mlflow
    from mlflow import MlflowClient

    from folksy.lineage import log_metrics_for_model
    from folksy.tracking import configure

    configure()
    stub = tmp_path / "stub.py"  # a real models-from-code pyfunc: what it predicts does not matter here
    stub.write_text(textwrap.dedent("""
        import mlflow
        class Stub(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return list(model_input)
        mlflow.models.set_model(Stub())
    """))
    with mlflow.start_run(run_name="train") as train:
        model_id = mlflow.pyfunc.log_model(name="model", python_model=str(stub), pip_requirements=[f"mlflow=={mlflow.__version__}"]).model_id
    dataset = mlflow.data.from_pandas(split_frame(split_rows(2)), source="corpus/training_pairs.jsonl", name="folksy-test")
    figures = {"model/bleu": 12.5, "base/bleu": 3.0}
    with mlflow.start_run(run_name="evaluate") as evaluate:
        log_metrics_for_model(figures, f"runs:/{train.info.run_id}/model", lambda key: key.startswith("model/"), dataset=dataset)
    with mlflow.start_run(run_name="evaluate") as of_a_directory:
        log_metrics_for_model(figures, str(tmp_path), lambda key: True)  # no logged model: the run keeps them all

    [on_model] = MlflowClient().get_logged_model(model_id).metrics
    assert (on_model.key, on_model.value, on_model.run_id, on_model.dataset_name) == ("model/bleu", 12.5, evaluate.info.run_id, "folksy-test")
    assert MlflowClient().get_run(evaluate.info.run_id).data.metrics == figures
    assert MlflowClient().get_run(of_a_directory.info.run_id).data.metrics == figures
