"""Deployable students: ONNX export, INT8 dynamic quantization, and a parity check that gates the output.

``export_model`` turns a saved PyTorch QA model folder into an ONNX folder that :class:`QAPredictor`,
``distilqa evaluate`` and ``distilqa predict`` load like any other model:

1. ``torch.onnx.export(dynamo=True)`` writes one self-contained ``model.onnx`` (no external data file) with
   the model's own inputs (``token_type_ids`` only when its forward takes it), outputs ``start_logits`` and
   ``end_logits``, and dynamic batch and sequence axes. The TorchScript exporter (``dynamo=False``) is not
   used: with transformers 5 it bakes the dummy input's sequence length into the graph and its logits drift by
   ~0.1 on other lengths, which the parity check catches.
2. optionally ``onnxruntime.quantization.quantize_dynamic``: INT8 (``QInt8``) weights for the ``MatMul`` and
   ``Gather`` (embedding) ops, activations quantized on the fly; the tiny QA head stays float by default.
3. the parity check, on real features (``--data``, else the built-in demo dev set, 91 original questions):
   fp32 ONNX logits must lie within ``max_logit_diff`` of PyTorch's; INT8 must pick the same answer text as
   PyTorch fp32 for at least ``min_span_agreement`` of the questions and lose at most ``max_f1_drop`` F1. On
   SQuAD 2.0 data, under the no-answer threshold saved with the model (else 0.0), fp32 and INT8 must also keep
   the answer / no-answer decision of all but ``max_no_answer_flips`` of the questions (HasAns / NoAns F1 and
   the answered share are in the report).
   The report adds a 95% paired bootstrap interval of the F1 change (``f1_change_95ci``): on a few hundred
   questions an INT8 change can be noise, so read a failure against its interval, or check on more questions.
   The output folder is written atomically, and only when the check passes (or with ``force=True``).

Example::

    >>> report = export_model("runs/student/model", "runs/student-int8", quantize="int8")
    >>> report["parity"]["passed"], report["parity"]["int8"]["span_agreement"]
    (True, 0.98)
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from distilqa.errors import InputError
from distilqa.export.onnx import DEFAULT_OPSET, MAX_SINGLE_FILE_BYTES, export_onnx, optimize_for_cpu
from distilqa.export.parity import ParityCheck, ParityError, ParityTolerance
from distilqa.export.quantize import QuantizeOptions, quantize_int8
from distilqa.qa.backends import ONNX_FILE, OUTPUTS, require

REPORT_FILE = "distilqa_export.json"


def export_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    quantize: str | None = None,
    data: str | os.PathLike | None = None,
    limit: int | None = None,
    params=None,
    tolerance: ParityTolerance | None = None,
    quantize_options: QuantizeOptions | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    batch_size: int = 32,
    extra_files: dict[str, Any] | None = None,
    log=print,
    null_threshold: float | None = None,
) -> dict[str, Any]:
    """Export ``model_dir`` to an ONNX folder ``output`` after a parity check (see the module docstring).

    Args:
        model_dir: a PyTorch QA model folder (``save_pretrained``).
        output: the folder to write: ``model.onnx``, tokenizer, ``config.json``, ``distilqa_export.json``, ``README.md``.
        quantize (`str`, *optional*): ``"int8"`` for dynamic INT8 quantization; `None` keeps fp32.
        data (*optional*): SQuAD file for the parity check (default: the built-in demo dev set).
        limit (`int`, *optional*): use only the first ``limit`` questions of ``data``.
        params (:class:`FeatureParams`, *optional*): windowing for the parity features (default 384 / 128).
        tolerance (:class:`ParityTolerance`, *optional*): what must hold for the folder to be written.
        quantize_options (:class:`QuantizeOptions`, *optional*): INT8 settings.
        opset (`int`, defaults to 18): ONNX opset.
        force (`bool`, defaults to `False`): write the folder even when the parity check fails.
        batch_size (`int`, defaults to 32): windows per forward pass in the parity check.
        extra_files (`dict`, *optional*): more files for the folder, ``{name: dict (JSON) or str (text)}``
            (``export --target auto`` adds its report).
        log: where progress lines go (``print`` by default).
        null_threshold (`float`, *optional*): the SQuAD 2.0 no-answer threshold of the parity check; default:
            the one saved with ``model_dir`` (:mod:`distilqa.qa.threshold`), else 0.0. A saved threshold is
            carried into the export, fingerprinted to its ``model.onnx``.

    Returns:
        `dict`: the export report, also saved as ``distilqa_export.json``.

    Raises:
        ParityError: the check failed and ``force`` is off; nothing is written.
    """
    import torch

    from distilqa.demo import demo_data
    from distilqa.infra.files import atomic_directory, atomic_write_json, atomic_write_text
    from distilqa.infra.models import count_parameters, load_qa_model, load_tokenizer
    from distilqa.infra.ownership import EXPORT, check_output
    from distilqa.qa.data import load_examples
    from distilqa.qa.features import FeatureParams
    from distilqa.qa.predictor import is_onnx_folder
    from distilqa.qa.threshold import THRESHOLD_FILE, read_threshold, resolve_threshold, write_threshold

    if quantize not in (None, "int8"):
        raise InputError(
            f"--quantize {quantize!r} is not supported; use --quantize int8 or leave it out for fp32"
        )
    if is_onnx_folder(model_dir):
        raise InputError(f"{model_dir} is already an ONNX export; give the PyTorch model folder it came from")
    # A new folder, an empty one or an earlier export (replaced whether or not force is given: force is about
    # the parity check); never the model's folder, a folder inside or around it, nor anything else.
    output = check_output(output, EXPORT, "--output", {"model": model_dir, "--data file": data})
    onnxruntime = require("onnxruntime")
    tolerance = tolerance or ParityTolerance()
    params = params or FeatureParams()
    model = load_qa_model(model_dir, require_qa_head=True)
    tokenizer = load_tokenizer(model_dir)
    name = "built-in demo dev set" if data is None else str(data)
    examples = load_examples(demo_data("dev") if data is None else data, check_offsets="ignore", limit=limit)
    threshold, note, news = resolve_threshold(model_dir, null_threshold)
    if news:
        log(note)
    saved = read_threshold(model_dir)
    check = ParityCheck(model, tokenizer, examples, params, tolerance, batch_size, null_threshold=threshold)
    log(f"parity data: {name}, {len(examples)} questions, {len(check.features)} windows")
    parity: dict[str, Any] = {
        "data": name,
        "questions": len(examples),
        "windows": len(check.features),
        "tolerance": asdict(tolerance),
        "pytorch_fp32": check.scores,
    }
    report: dict[str, Any] = {
        "source_model": str(model_dir),
        "exporter": f"torch.onnx.export(dynamo=True, eager attention), torch {torch.__version__}",
        "onnxruntime": onnxruntime.__version__,
        "opset": opset,
        "parameters": count_parameters(model),
        "feature_params": params.to_dict(),
        "quantization": None,
        "outputs": list(OUTPUTS),
        "null_threshold": threshold,
    }
    with atomic_directory(output, kind=EXPORT, what="--output") as tmp:
        onnx_file = tmp / ONNX_FILE
        report["inputs"] = export_onnx(model, tokenizer, onnx_file, opset=opset)
        report["graph_optimization"] = optimize_for_cpu(onnx_file, model.config)
        fp32 = parity["onnx_fp32"] = check.compare(onnx_file, quantized=False)
        log(
            f"fp32 ONNX vs PyTorch: max |logit diff| {fp32['max_abs_logit_diff']:.2e} (tolerance {tolerance.max_logit_diff:g})"
        )
        _log_no_answer(log, "fp32", check, fp32)
        if quantize == "int8":
            fp32_file = tmp / "model-fp32.onnx"
            os.replace(onnx_file, fp32_file)
            report["quantization"] = quantize_int8(fp32_file, onnx_file, quantize_options)
            fp32_file.unlink()
            int8 = parity["onnx_int8"] = check.compare(onnx_file, quantized=True)
            log(
                f"INT8 ONNX vs PyTorch fp32: span agreement {int8['span_agreement']:.1%} (minimum "
                f"{tolerance.min_span_agreement:.0%}), F1 {check.scores['f1']:.2f} -> {int8['f1']:.2f} "
                f"(allowed drop {tolerance.max_f1_drop:g}; 95% interval of the change "
                f"{int8['f1_change_95ci'][0]:+.2f} to {int8['f1_change_95ci'][1]:+.2f})"
            )
            _log_no_answer(log, "INT8", check, int8)
        failures = check.failures
        parity.update(passed=not failures, failures=failures)
        report.update(parity=parity, forced=bool(failures and force))
        if failures and not force:
            error = ParityError(
                f"parity check failed, nothing written to {output}: {'; '.join(failures)}; relax the tolerance, "
                "try other quantization settings (--per_channel, --quantize_ops MatMul), or pass --force"
            )
            error.report = report
            raise error
        size = (tmp / ONNX_FILE).stat().st_size
        if size >= MAX_SINGLE_FILE_BYTES:
            raise InputError(f"{ONNX_FILE} is {size / 1e9:.1f} GB, over the 2 GB a single ONNX file can hold")
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)
        atomic_write_json(tmp / REPORT_FILE, report)
        if saved is not None:  # the same threshold, now for the exported weights
            write_threshold(
                tmp, saved["null_threshold"], best_f1=saved.get("best_f1"), chosen_on=saved.get("chosen_on")
            )
            log(f"carried {THRESHOLD_FILE} ({saved['null_threshold']:.4g}) into the export")
        for file_name, content in (extra_files or {}).items():
            if isinstance(content, str):
                atomic_write_text(tmp / file_name, content)
            else:
                atomic_write_json(tmp / file_name, content)
        _write_card(tmp, output, report)
    if failures:
        log(f"WARNING: parity check failed but --force was given: {'; '.join(failures)}")
    log(f"wrote {output} ({size / 1e6:.1f} MB model.onnx, {'INT8' if quantize else 'fp32'})")
    return report


def _log_no_answer(log, kind: str, check: ParityCheck, result: dict[str, Any]) -> None:
    """SQuAD 2.0 parity data: one line on HasAns / NoAns F1 and the answer / no-answer split."""
    if "no_answer_flips" not in result:
        return
    ref = check.scores
    log(
        f"{kind} ONNX vs PyTorch (no-answer threshold {check.null_threshold:g}): answered {ref['answered']:.1%} -> "
        f"{result['answered']:.1%}, decision flipped for {result['no_answer_flips']:.1%} (tolerance "
        f"{check.tolerance.max_no_answer_flips:g}), HasAns F1 {ref.get('HasAns_f1', float('nan')):.2f} -> "
        f"{result.get('HasAns_f1', float('nan')):.2f}, NoAns F1 {ref.get('NoAns_f1', float('nan')):.2f} -> "
        f"{result.get('NoAns_f1', float('nan')):.2f}"
    )


def _write_card(folder: Path, location: Path, report: dict[str, Any]) -> None:
    from distilqa.infra.cards import write_model_card

    parity, quant = report["parity"], report["quantization"]
    kind = "INT8" if quant else "fp32"
    rows = {"PyTorch fp32 (source)": parity["pytorch_fp32"], "ONNX fp32": parity["onnx_fp32"]}
    if "onnx_int8" in parity:
        rows["ONNX INT8"] = parity["onnx_int8"]
    settings = {"opset": report["opset"], "exporter": report["exporter"], **report["feature_params"]}
    if quant:
        settings.update(
            {
                "quantization": "dynamic INT8 (QInt8 weights, activations quantized at run time)",
                "quantized op types": ", ".join(quant["op_types"]),
                "per channel": quant["per_channel"],
                "reduce range": quant["reduce_range"],
                "QA head kept in float": quant["keep_qa_head"],
            }
        )
    notes = [
        f"ONNX export ({kind}) of {report['source_model']}; it runs on onnxruntime through distilqa "
        "(`QAPredictor.from_pretrained`, `--model`), not through `AutoModelForQuestionAnswering`.",
        f"Parity check {'passed' if parity['passed'] else 'FAILED (written with --force)'} on {parity['data']}: "
        + ", ".join(f"{k} {v}" for k, v in parity["tolerance"].items())
        + "; details in distilqa_export.json.",
    ]
    write_model_card(
        folder,
        title=f"{display_name(report['source_model'])} (ONNX {kind})",
        base_models={"source": report["source_model"]},
        data={"parity check": f"{parity['data']} ({parity['questions']} questions)"},
        hyperparameters=settings,
        metrics={
            "eval_data": parity["data"],
            **{k: {**v, "num_questions": parity["questions"]} for k, v in rows.items()},
        },
        speed={"parameters": report["parameters"]},
        notes=notes,
        location=location,
    )


def display_name(path: str | os.PathLike) -> str:
    """``runs/student/model`` -> ``student/model``: the folder name, with its parent when it is generic."""
    path = Path(path)
    return (
        f"{path.parent.name}/{path.name}"
        if path.name in {"model", "final", "onnx", "export"} and path.parent.name
        else path.name
    )
