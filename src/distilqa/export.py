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
   PyTorch fp32 for at least ``min_span_agreement`` of the questions and lose at most ``max_f1_drop`` F1.
   The report adds a 95% paired bootstrap interval of the F1 change (``f1_change_95ci``): on a few hundred
   questions an INT8 change can be noise, so read a failure against its interval, or check on more questions.
   The output folder is written atomically, and only when the check passes (or with ``force=True``).

Example::

    >>> report = export_model("runs/student/model", "runs/student-int8", quantize="int8")
    >>> report["parity"]["passed"], report["parity"]["int8"]["span_agreement"]
    (True, 0.98)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import types
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilqa.errors import InputError
from distilqa.metrics import paired_bootstrap_interval, question_f1

ONNX_FILE = "model.onnx"
REPORT_FILE = "distilqa_export.json"
OUTPUTS = ("start_logits", "end_logits")
DEFAULT_OPSET = 18
MAX_SINGLE_FILE_BYTES = 2_000_000_000  # protobuf's 2 GB limit on one ONNX file
INSTALL_HINT = "pip install 'distilqa[onnx]'"


class ParityError(InputError):
    """The exported model does not match the PyTorch model within the stated tolerance."""


@dataclass
class ParityTolerance:
    """What the exported model must meet before it is written.

    Args:
        max_logit_diff (`float`, defaults to 1e-3): fp32: largest allowed |ONNX - PyTorch| start/end logit over
            the real (non-padding) tokens of every window.
        min_span_agreement (`float`, defaults to 0.8): INT8: share of questions whose answer text equals the
            PyTorch fp32 model's. On a CPU without VNNI, per-channel INT8 students changed about 15% of their
            answers while F1 moved by less than 0.7 points (docs/RESULTS.md, section 5); F1 is the real guard.
        max_f1_drop (`float`, defaults to 1.0): INT8: largest allowed F1 loss (points) against PyTorch fp32.
    """

    max_logit_diff: float = 1e-3
    min_span_agreement: float = 0.8
    max_f1_drop: float = 1.0

    def __post_init__(self):
        for name in ("max_logit_diff", "max_f1_drop"):
            if getattr(self, name) < 0:
                raise InputError(
                    f"{name} must be >= 0, got {getattr(self, name)}; pass --{name.replace('_', '-')} 0 or more"
                )
        if not 0.0 <= self.min_span_agreement <= 1.0:
            raise InputError(
                f"min_span_agreement must lie in [0, 1], got {self.min_span_agreement}; pass e.g. --min-span-agreement 0.9"
            )


@dataclass
class QuantizeOptions:
    """``quantize_dynamic`` settings (see the onnxruntime quantization docs).

    Args:
        op_types (`tuple[str, ...]`, defaults to ``("MatMul", "Gather")``): op types to quantize; ``Gather`` is
            the embedding lookup (most of a small model's bytes).
        per_channel (`bool`, defaults to `True`): one scale per output channel instead of one per weight
            matrix: on a 3-layer MiniLM student per tensor cost 6.3 F1 on the SQuAD dev subset, per channel 0.7
            (docs/RESULTS.md, section 5).
        reduce_range (`bool`, defaults to `False`): 7-bit weights, for CPUs without VNNI where 8-bit overflows.
        keep_qa_head (`bool`, defaults to `True`): leave the QA head (the ``hidden x 2`` MatMul) in float.
    """

    op_types: tuple[str, ...] = ("MatMul", "Gather")
    per_channel: bool = True
    reduce_range: bool = False
    keep_qa_head: bool = True


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"ONNX export and inference need {module.split('.')[0]}: {INSTALL_HINT}") from None


class OnnxQAModel:
    """An exported ``model.onnx`` behind the backend interface of :class:`distilqa.inference.QAPredictor`.

    Args:
        path: the ``model.onnx`` file (or the folder holding it).
        threads (`int`, *optional*): intra-op threads (default: onnxruntime's choice, the physical cores).

    ``model(batch)`` takes ``{input name: int64 array (B, L)}`` and returns float32 ``(start_logits,
    end_logits)``, each (B, L); B and L may differ from call to call.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        ort = _require("onnxruntime")
        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        if not path.is_file():
            raise InputError(f"{path} does not exist; export a model first with 'distilqa export'")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own, untyped errors
            raise InputError(
                f"onnxruntime cannot load {path}: {' '.join(str(err).split())[:200]}; re-export it"
            ) from None
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        missing = [o for o in OUTPUTS if o not in {o.name for o in self.session.get_outputs()}]
        if missing:
            raise InputError(f"{path} has no output {missing[0]!r}; export it with 'distilqa export'")
        config = path.parent / "config.json"
        # Read-only view of config.json (e.g. max_position_embeddings) without importing transformers.
        self.config = (
            types.SimpleNamespace(**json.loads(config.read_text(encoding="utf-8")))
            if config.exists()
            else None
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise InputError(
                f"{self.path} needs input {missing[0]!r}; build features with the tokenizer saved beside it"
            )
        feeds = {n: np.ascontiguousarray(batch[n], dtype=np.int64) for n in self.input_names}
        start, end = self.session.run(list(OUTPUTS), feeds)
        return start, end


def onnx_input_names(model, tokenizer) -> list[str]:
    """The tokenizer's inputs that the model's forward takes, in forward-signature order."""
    import inspect

    forward = list(inspect.signature(model.forward).parameters)
    wanted = set(tokenizer.model_input_names) | {"input_ids", "attention_mask"}
    return [name for name in forward if name in wanted]


def export_onnx(model, tokenizer, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> list[str]:
    """Write ``model`` (a PyTorch QA model) to one ONNX file with dynamic batch and sequence axes.

    Returns:
        `list[str]`: the ONNX input names.
    """
    _require("onnx"), _require("onnxscript")
    import inspect

    import torch

    names = onnx_input_names(model, tokenizer)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size >= MAX_SINGLE_FILE_BYTES:
        raise InputError(
            f"the model's weights take {size / 1e9:.1f} GB; one ONNX file holds < 2 GB: export a smaller model"
        )

    class LogitsOnly(torch.nn.Module):
        """The model with named tensor inputs and a (start_logits, end_logits) tuple out."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **inputs):
            out = self.inner(**inputs)
            return out.start_logits, out.end_logits

    # torch.export needs explicit parameters, not **inputs: build forward(self, input_ids, ...) for these names.
    LogitsOnly.forward.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    dummy = tokenizer(
        ["Who wrote it?", "When?"],
        ["It was written by Ada Lovelace in 1843.", "In the spring of 1871, long after the war had ended."],
        padding=True,
        return_tensors="pt",
    )
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    wrapper = LogitsOnly(model.eval()).eval()
    with torch.no_grad(), _quiet_exporter():
        torch.onnx.export(
            wrapper,
            (),
            str(path),
            kwargs={n: dummy[n] for n in names},
            input_names=names,
            output_names=list(OUTPUTS),
            dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    _check_dynamic(path, names)
    return names


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter (torchvision not installed, axis renaming, pytree deprecations)."""
    import logging
    import warnings

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_dynamic(path: str | os.PathLike, names: list[str]) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    for item in [*graph.input, *graph.output]:
        dims = item.type.tensor_type.shape.dim
        if len(dims) != 2 or not all(d.dim_param for d in dims):
            raise InputError(
                f"the export of {item.name} has fixed shape {[d.dim_value for d in dims]}; please report this"
            )
    if [i.name for i in graph.input] != names:
        raise InputError(
            f"the export has inputs {[i.name for i in graph.input]}, expected {names}; please report this"
        )


def quantize_int8(
    source: str | os.PathLike, target: str | os.PathLike, options: QuantizeOptions | None = None
) -> dict[str, Any]:
    """INT8 dynamic quantization of an fp32 ONNX file; returns the settings used (for the export report).

    The model is first pre-processed as the onnxruntime docs recommend (``quant_pre_process``: shape inference
    and graph optimisation); weights become ``QInt8``, activations are quantized at run time.
    """
    _require("onnxruntime")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = options or QuantizeOptions()
    with tempfile.TemporaryDirectory(prefix="distilqa-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference stops short on torch.export graphs ("Incomplete symbolic shape inference");
        # ONNX shape inference and onnxruntime's basic graph optimisation still run.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        excluded = _qa_head_nodes(onnx.load(str(prepared))) if options.keep_qa_head else []
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(options.op_types),
            per_channel=options.per_channel,
            reduce_range=options.reduce_range,
            nodes_to_exclude=excluded,
        )
    return {
        "method": "onnxruntime.quantization.quantize_dynamic after quant_pre_process(skip_symbolic_shape=True)",
        "weight_type": "QInt8",
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
        "excluded_nodes": excluded,
    }


def _qa_head_nodes(model) -> list[str]:
    """MatMul nodes whose weight is (hidden, 2): the QA head."""
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    return [
        n.name
        for n in model.graph.node
        if n.op_type in ("MatMul", "Gemm") and any(shapes.get(i, [0])[-1:] == [2] for i in n.input)
    ]


class _ParityCheck:
    """PyTorch fp32 answers and logits on the parity features, and comparisons of exports against them."""

    def __init__(self, model, tokenizer, examples, params, tolerance: ParityTolerance, batch_size: int):
        from distilqa.features import build_eval_features
        from distilqa.inference import QAPredictor

        self.tokenizer, self.examples, self.params = tokenizer, examples, params
        self.tolerance, self.batch_size = tolerance, batch_size
        self.features = build_eval_features(examples, tokenizer, params)
        self.mask = np.asarray(self.features["attention_mask"], dtype=bool)
        self.start, self.end, self.predictions, self.scores = self._run(QAPredictor(model, tokenizer, params))
        self.question_f1 = question_f1(examples, self.predictions)
        self.failures: list[str] = []

    def _run(self, predictor):
        from distilqa.metrics import score_predictions
        from distilqa.postprocess import offsets_array, postprocess_predictions

        start, end = predictor.logits(self.features, batch_size=self.batch_size, progress=False)
        offsets = offsets_array(self.features["offset_mapping"])
        v2 = self.examples.version_2
        result = postprocess_predictions(
            self.examples, self.features["example_id"], offsets, start, end, version_2=v2
        )
        scores = score_predictions(
            self.examples, result.predictions, na_probs=result.null_odds if v2 else None
        )
        em = scores.get("exact_match", scores.get("exact", 0.0))
        return (
            start,
            end,
            result.predictions,
            {"exact_match": round(float(em), 2), "f1": round(float(scores["f1"]), 2)},
        )

    def compare(self, onnx_file: Path, quantized: bool) -> dict[str, Any]:
        """Run the export on the same features; record a failure when it misses the tolerance."""
        from distilqa.inference import QAPredictor

        start, end, predictions, scores = self._run(
            QAPredictor(OnnxQAModel(onnx_file), self.tokenizer, self.params)
        )
        diff = max(np.abs(self.start - start)[self.mask].max(), np.abs(self.end - end)[self.mask].max())
        same = sum(predictions.get(k) == v for k, v in self.predictions.items())
        low, high = paired_bootstrap_interval(self.question_f1, question_f1(self.examples, predictions))
        result = {
            "max_abs_logit_diff": float(diff),
            "span_agreement": round(same / len(self.predictions), 4),
            **scores,
            "f1_change": round(scores["f1"] - self.scores["f1"], 2),
            # 95% paired bootstrap interval over these questions: how much the change could move on another
            # sample of the same size
            "f1_change_95ci": [round(low, 2), round(high, 2)],
        }
        tol = self.tolerance
        if not quantized and result["max_abs_logit_diff"] > tol.max_logit_diff:
            self.failures.append(
                f"fp32 max |logit diff| {diff:.2e} > --max-logit-diff {tol.max_logit_diff:g}"
            )
        if quantized and result["span_agreement"] < tol.min_span_agreement:
            self.failures.append(
                f"INT8 span agreement {result['span_agreement']:.1%} < --min-span-agreement {tol.min_span_agreement:g}"
            )
        if quantized and -result["f1_change"] > tol.max_f1_drop:
            self.failures.append(
                f"INT8 F1 drop {-result['f1_change']:.2f} > --max-f1-drop {tol.max_f1_drop:g} (95% interval "
                f"of the change on these {len(self.predictions)} questions: {low:+.2f} to {high:+.2f})"
            )
        return result


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
    log=print,
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
        log: where progress lines go (``print`` by default).

    Returns:
        `dict`: the export report, also saved as ``distilqa_export.json``.

    Raises:
        ParityError: the check failed and ``force`` is off; nothing is written.
    """
    import torch

    from distilqa.data import load_examples
    from distilqa.demo import demo_data
    from distilqa.features import FeatureParams
    from distilqa.files import atomic_directory, atomic_write_json
    from distilqa.inference import is_onnx_folder
    from distilqa.models import count_parameters, load_qa_model, load_tokenizer

    if quantize not in (None, "int8"):
        raise InputError(
            f"--quantize {quantize!r} is not supported; use --quantize int8 or leave it out for fp32"
        )
    if is_onnx_folder(model_dir):
        raise InputError(f"{model_dir} is already an ONNX export; give the PyTorch model folder it came from")
    output = Path(output)
    if output.exists() and output.resolve() == Path(model_dir).resolve():
        raise InputError(f"--output {output} is the model folder itself; choose a new folder for the export")
    if output.exists() and any(output.iterdir()) and not (output / REPORT_FILE).exists():
        raise InputError(
            f"--output {output} exists and is not an earlier export; remove it or choose another folder"
        )
    onnxruntime = _require("onnxruntime")
    tolerance = tolerance or ParityTolerance()
    params = params or FeatureParams()
    model = load_qa_model(model_dir, require_qa_head=True)
    tokenizer = load_tokenizer(model_dir)
    name = "built-in demo dev set" if data is None else str(data)
    examples = load_examples(demo_data("dev") if data is None else data, check_offsets="ignore", limit=limit)
    check = _ParityCheck(model, tokenizer, examples, params, tolerance, batch_size)
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
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "onnxruntime": onnxruntime.__version__,
        "opset": opset,
        "parameters": count_parameters(model),
        "feature_params": params.to_dict(),
        "quantization": None,
        "outputs": list(OUTPUTS),
    }
    with atomic_directory(output) as tmp:
        onnx_file = tmp / ONNX_FILE
        report["inputs"] = export_onnx(model, tokenizer, onnx_file, opset=opset)
        fp32 = parity["onnx_fp32"] = check.compare(onnx_file, quantized=False)
        log(
            f"fp32 ONNX vs PyTorch: max |logit diff| {fp32['max_abs_logit_diff']:.2e} (tolerance {tolerance.max_logit_diff:g})"
        )
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
        failures = check.failures
        parity.update(passed=not failures, failures=failures)
        report.update(parity=parity, forced=bool(failures and force))
        if failures and not force:
            error = ParityError(
                f"parity check failed, nothing written to {output}: {'; '.join(failures)}; relax the tolerance, "
                "try other quantization settings (--per-channel, --quantize-ops MatMul), or pass --force"
            )
            error.report = report
            raise error
        size = (tmp / ONNX_FILE).stat().st_size
        if size >= MAX_SINGLE_FILE_BYTES:
            raise InputError(f"{ONNX_FILE} is {size / 1e9:.1f} GB, over the 2 GB a single ONNX file can hold")
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)
        atomic_write_json(tmp / REPORT_FILE, report)
        _write_card(tmp, output, report)
    if failures:
        log(f"WARNING: parity check failed but --force was given: {'; '.join(failures)}")
    log(f"wrote {output} ({size / 1e6:.1f} MB model.onnx, {'INT8' if quantize else 'fp32'})")
    return report


def _write_card(folder: Path, location: Path, report: dict[str, Any]) -> None:
    from distilqa.card import write_model_card

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
