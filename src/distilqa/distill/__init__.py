"""Knowledge distillation for extractive QA: config, losses, attention capture, the trainer, student init,
augmentation and the teacher-logit cache.

``DistillationTrainer`` (``trainer``) extends :class:`distilqa.qa.trainer.QuestionAnsweringTrainer` with the
DistilBERT loss (``losses``); ``student`` makes a smaller student from teacher layers; ``augment`` makes
teacher-labelled question variants; ``cache`` stores the teacher's logits once for every later run.
"""
