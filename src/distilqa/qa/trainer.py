"""``QuestionAnsweringTrainer``: the Trainer with SQuAD evaluation (n-best post-processing, EM/F1).

Like transformers' ``trainer_qa.py`` it overrides only ``evaluate`` and ``predict``: the evaluation loop runs
as usual (gathering logits across processes, dropping the duplicates of uneven splits), then the logits of
all windows go through :func:`distilqa.qa.postprocess.postprocess_predictions` and :func:`distilqa.qa.metrics.score_predictions`.
The metrics are logged as ``eval_exact_match`` / ``eval_f1`` (v1.1) or ``eval_exact`` / ``eval_f1`` /
``eval_HasAns_*`` / ``eval_best_f1`` ... (v2.0), so ``eval_strategy``, ``load_best_model_at_end`` and
``metric_for_best_model="f1"`` work unchanged.

One more override makes checkpoints crash-safe: ``_save_checkpoint`` marks each finished checkpoint complete and
rotates old ones only afterwards (see :mod:`distilqa.infra.checkpoints`), so ``--resume`` always finds one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from transformers import Trainer
from transformers.trainer_utils import PredictionOutput, speed_metrics

from distilqa.infra.checkpoints import (
    PREFIX,
    begin_checkpoint,
    checkpoint_disk,
    mark_complete,
    remove_checkpoint,
    rotate_checkpoints,
)
from distilqa.infra.files import disk_full_error, is_disk_full
from distilqa.qa.data import SquadExamples
from distilqa.qa.metrics import score_predictions
from distilqa.qa.postprocess import PostprocessResult, mask_padding, offsets_array, postprocess_predictions


class QuestionAnsweringTrainer(Trainer):
    """A ``Trainer`` whose evaluation scores SQuAD answers.

    Args:
        eval_examples (:class:`distilqa.qa.data.SquadExamples`, *optional*): the raw questions behind ``eval_dataset``.
        eval_dataset: eval features from :func:`distilqa.qa.features.build_eval_features` (with ``example_id`` and
            ``offset_mapping``; the Trainer drops them before the forward pass).
        args (:class:`distilqa.qa.config.QuestionAnsweringConfig`): n_best, max_answer_length, null_threshold.
        Everything else as for ``transformers.Trainer``.
    """

    # Our losses are means over the batch, never normalised by num_items_in_batch: let training_step divide by
    # the gradient-accumulation steps (HF decides this from the model's signature when it is None).
    loss_is_scaled_for_ga = False

    def __init__(self, *args, eval_examples: SquadExamples | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples
        self.last_predictions: PostprocessResult | None = None
        # The run's settings (distilqa.infra.run_settings), recorded in each checkpoint's completeness marker.
        self.run_settings: dict | None = None

    def _save_checkpoint(self, model, trial) -> None:
        # Crash safety (see distilqa.infra.checkpoints). HF rotates old checkpoints (save_total_limit) at the end of this
        # call, before on_save: a kill right after could leave no complete checkpoint, and its newest-first rule
        # can keep a stale half-written folder of a crashed run. So: unmark the folder before it is (re)written,
        # save without HF's rotation, mark it once every process has written its files, then rotate ourselves.
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX}{self.state.global_step}"
        if self.args.should_save:
            begin_checkpoint(folder)
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError) as err:
            if not (self.args.should_save and is_disk_full(err, folder.parent)):
                raise
            remove_checkpoint(folder)  # the torn checkpoint would only fill the disk further
            raise disk_full_error(
                folder.parent,
                f"{folder.name} could not be written and was removed (the run's other checkpoints use "
                f"{checkpoint_disk(folder.parent)['disk_mb']:.0f} MB; a lower --save_total_limit keeps fewer)",
                "run the same command with --resume",
            ) from err
        finally:
            self.args.save_total_limit = limit
        self.accelerator.wait_for_everyone()  # every rank's rng_state_<rank>.pth is on disk before the marker
        if self.args.should_save and folder.is_dir():
            mark_complete(folder, self.state.global_step, run=self.run_settings)
            rotate_checkpoints(folder.parent, limit, keep=[folder, self.state.best_model_checkpoint])

    def _logits_and_answers(self, dataset, examples: SquadExamples, description: str, metric_key_prefix: str):
        dataloader = (
            self.get_eval_dataloader(dataset)
            if description == "Evaluation"
            else self.get_test_dataloader(dataset)
        )
        compute_metrics, self.compute_metrics = self.compute_metrics, None
        try:
            output = self.evaluation_loop(
                dataloader,
                description=description,
                prediction_loss_only=False,
                metric_key_prefix=metric_key_prefix,
            )
        finally:
            self.compute_metrics = compute_metrics
        offsets = offsets_array(dataset["offset_mapping"])
        # Batches may be cut to their longest sequence (trim_padding_collator) and padded back with -100 when
        # gathered. Padding is never context: every padding position (past a batch's width, or inside it for a
        # window shorter than its batch) gets a very low logit, so that it takes none of the n-best slots and
        # the answers do not depend on which windows share a batch.
        mask = np.asarray(dataset["attention_mask"], dtype=bool)
        start, end = (mask_padding(np.asarray(x, dtype=np.float32), mask) for x in output.predictions[:2])
        result = postprocess_predictions(
            examples,
            dataset["example_id"],
            offsets,
            start,
            end,
            n_best=self.args.n_best,
            max_answer_length=self.args.max_answer_length,
            version_2=examples.version_2,
            null_threshold=self.args.null_threshold,
        )
        return output, result

    def _metrics(
        self, output, result: PostprocessResult, examples: SquadExamples, prefix: str, start_time: float
    ) -> dict[str, float]:
        from distilqa.qa.evaluation import scored_answers

        scores = score_predictions(
            examples,
            scored_answers(result, examples.version_2),
            **(
                {"na_probs": result.null_odds, "na_prob_thresh": self.args.null_threshold}
                if examples.version_2
                else {}
            ),
        )
        metrics = {f"{prefix}_{k}": v for k, v in scores.items()}
        metrics.update({k: v for k, v in output.metrics.items() if k.startswith(prefix)})
        total_batch = self.args.eval_batch_size * self.args.world_size
        metrics.update(
            speed_metrics(
                prefix,
                start_time,
                num_samples=output.num_samples,
                num_steps=math.ceil(output.num_samples / total_batch),
            )
        )
        return metrics

    def evaluate(
        self,
        eval_dataset=None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
        eval_examples: SquadExamples | None = None,
    ) -> dict[str, float]:
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        examples = self.eval_examples if eval_examples is None else eval_examples
        if dataset is None or examples is None:
            raise ValueError(
                "QuestionAnsweringTrainer.evaluate needs eval features (eval_dataset) and eval_examples"
            )
        self._memory_tracker.start()
        start_time = time.time()
        output, result = self._logits_and_answers(dataset, examples, "Evaluation", metric_key_prefix)
        self.last_predictions = result
        metrics = self._metrics(output, result, examples, metric_key_prefix, start_time)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return metrics

    def predict(
        self,
        test_dataset,
        test_examples: SquadExamples | None = None,
        ignore_keys=None,
        metric_key_prefix: str = "test",
    ) -> PredictionOutput:
        """Answers for ``test_examples``: ``predictions`` is the :class:`PostprocessResult`, ``metrics`` EM/F1."""
        if test_examples is None:
            raise ValueError("QuestionAnsweringTrainer.predict needs test_examples (the raw questions)")
        self._memory_tracker.start()
        start_time = time.time()
        output, result = self._logits_and_answers(
            test_dataset, test_examples, "Prediction", metric_key_prefix
        )
        metrics = self._metrics(output, result, test_examples, metric_key_prefix, start_time)
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return PredictionOutput(predictions=result, label_ids=None, metrics=metrics)
