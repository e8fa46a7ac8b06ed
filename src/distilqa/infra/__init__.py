"""What every stage stands on: atomic files, checkpoints, model and tokenizer loading, model cards, the
hardware description and markdown tables. Nothing here imports qa, distill or export."""
