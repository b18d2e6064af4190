"""Inference request and response bodies as rows: named features in, predictions (with scores) out.

Three body protocols, told apart by their members:

* **v1** (KServe / TensorFlow Serving): request ``{"instances": [...]}``, response ``{"predictions": [...]}``.
  An instance is a list of values (features ``f0, f1, ...``), an object (its keys are the features) or a
  single value (``f0``).
* **Open Inference Protocol v2**: ``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}`` and
  ``{"model_name", "model_version", "id", "outputs": [...]}``. The first dimension of each tensor is the
  batch; data may be flat (row-major) or nested. A tensor of one value per row is the feature named after
  the tensor (MLServer's pandas codec sends one tensor per column); a wider one gives ``<name>_0, <name>_1...``.
* **Seldon protocol**: ``{"data": {"names": [...], "ndarray": [[...]]}}`` or ``{"data": {"names": [...],
  "tensor": {"shape": [...], "values": [...]}}}``, the same in responses.

Feature names from the model catalogue (``features = [...]``) replace the positional names when the row width
matches. An output with one value per row is the prediction; one with several is a score per class, whose
arg-max is the prediction and whose maximum, when the scores are probabilities, the confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from models.schema import MAX_FEATURES, InvalidEvent, Scalar

V2_DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                          "FP16", "FP32", "FP64", "BYTES"})
MAX_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class Output:
    prediction: Scalar
    confidence: float | None = None
    scores: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class _Column:
    """One named block of a body: ``width`` values per row for ``rows`` rows."""

    name: str
    rows: list[list[Any]]
    names: list[str] | None = None  # per-position names (Seldon 'names'), if the protocol gives them


def protocol_of(body: Any) -> str:
    if isinstance(body, dict):
        if "instances" in body or "predictions" in body:
            return "v1"
        if isinstance(body.get("inputs"), list) or isinstance(body.get("outputs"), list):
            return "v2"
        if isinstance(body.get("data"), dict):
            return "seldon"
        if any(k in body for k in ("jsonData", "strData", "binData")):
            raise InvalidEvent("Seldon jsonData/strData/binData bodies carry no tensor to monitor")
    raise InvalidEvent(
        "body is neither v1 ('instances'/'predictions'), Open Inference Protocol v2 ('inputs'/'outputs') "
        "nor the Seldon protocol ('data')"
    )


# --- requests ------------------------------------------------------------------------------------------------


def request_rows(body: Any, feature_names: Sequence[str] | None = None) -> list[dict[str, Scalar]]:
    """One feature dict per row of the request."""
    protocol = protocol_of(body)
    if protocol == "v1":
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise InvalidEvent("v1 request needs a non-empty 'instances' list")
        rows = [_v1_instance(instance, i) for i, instance in enumerate(_bounded(instances, "instances"))]
    elif protocol == "v2":
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidEvent("v2 request needs a non-empty 'inputs' list")
        rows = _join_columns([_v2_tensor(t, f"inputs[{i}]") for i, t in enumerate(inputs)], "inputs")
    else:
        rows = _join_columns([_seldon_data(body["data"], "data")], "data")
    if feature_names:
        rows = [_rename(row, feature_names) for row in rows]
    for row in rows:
        if len(row) > MAX_FEATURES:
            raise InvalidEvent(f"a row has {len(row)} features, more than {MAX_FEATURES}")
    return rows


def _v1_instance(instance: Any, i: int) -> dict[str, Scalar]:
    if isinstance(instance, dict):
        return {str(k): _scalar(v, f"instances[{i}].{k}") for k, v in instance.items()}
    if isinstance(instance, list):
        return {f"f{j}": _scalar(v, f"instances[{i}][{j}]") for j, v in enumerate(_flatten(instance))}
    return {"f0": _scalar(instance, f"instances[{i}]")}


def _join_columns(columns: list[_Column], where: str) -> list[dict[str, Scalar]]:
    counts = {len(c.rows) for c in columns}
    if len(counts) != 1:
        raise InvalidEvent(f"the tensors in '{where}' disagree on the batch size: {sorted(counts)}")
    rows: list[dict[str, Scalar]] = [{} for _ in range(counts.pop())]
    for column in columns:
        for row, values in zip(rows, column.rows):
            if column.names is not None:
                names = column.names
            elif len(values) == 1:
                names = [column.name]
            else:
                names = [f"{column.name}_{j}" for j in range(len(values))]
            for name, value in zip(names, values):
                if name in row:
                    raise InvalidEvent(f"feature '{name}' appears twice in '{where}'")
                row[name] = _scalar(value, f"{where}.{name}")
    return rows


def _rename(row: dict[str, Scalar], names: Sequence[str]) -> dict[str, Scalar]:
    if len(row) != len(names):
        raise InvalidEvent(
            f"the catalogue names {len(names)} features but a request row has {len(row)} values"
        )
    return dict(zip(names, row.values()))


# --- responses -----------------------------------------------------------------------------------------------


def response_outputs(body: Any, prediction_output: str | None = None) -> list[Output]:
    """One output per row of the response."""
    protocol = protocol_of(body)
    if protocol == "v1":
        predictions = body.get("predictions")
        if not isinstance(predictions, list) or not predictions:
            raise InvalidEvent("v1 response needs a non-empty 'predictions' list")
        return [_v1_prediction(p, i) for i, p in enumerate(_bounded(predictions, "predictions"))]
    if protocol == "v2":
        outputs = body.get("outputs")
        if not isinstance(outputs, list) or not outputs:
            raise InvalidEvent("v2 response needs a non-empty 'outputs' list")
        columns = [_v2_tensor(t, f"outputs[{i}]") for i, t in enumerate(outputs)]
    else:
        columns = [_seldon_data(body["data"], "data")]
    return _outputs(columns, prediction_output)


def _v1_prediction(value: Any, i: int) -> Output:
    if isinstance(value, dict):
        return _from_scores({str(k): v for k, v in value.items()}, f"predictions[{i}]")
    if isinstance(value, list):
        flat = _flatten(value)
        if len(flat) == 1:
            return Output(_scalar(flat[0], f"predictions[{i}]"))
        return _from_scores({str(j): v for j, v in enumerate(flat)}, f"predictions[{i}]")
    return Output(_scalar(value, f"predictions[{i}]"))


def _outputs(columns: list[_Column], prediction_output: str | None) -> list[Output]:
    counts = {len(c.rows) for c in columns}
    if len(counts) != 1:
        raise InvalidEvent(f"the output tensors disagree on the batch size: {sorted(counts)}")
    if prediction_output is not None:
        chosen = [c for c in columns if c.name == prediction_output]
        if not chosen:
            raise InvalidEvent(f"response has no output named {prediction_output!r} "
                               f"(it has {[c.name for c in columns]})")
        label = chosen
    else:
        label = [c for c in columns if c.rows and len(c.rows[0]) == 1][:1]
    wide = [c for c in columns if c.rows and len(c.rows[0]) > 1 and c not in label][:1]
    result = []
    for i in range(counts.pop()):
        scores_output = None
        if wide:
            column = wide[0]
            names = column.names or [str(j) for j in range(len(column.rows[i]))]
            scores_output = _from_scores(dict(zip(names, column.rows[i])), f"{column.name}[{i}]")
        if label:
            values = label[0].rows[i]
            if len(values) != 1:
                raise InvalidEvent(f"output {label[0].name!r} has {len(values)} values per row; expected 1")
            prediction = _scalar(values[0], f"{label[0].name}[{i}]")
            result.append(Output(prediction, scores_output.confidence if scores_output else None,
                                 scores_output.scores if scores_output else None))
        elif scores_output is not None:
            result.append(scores_output)
        else:
            raise InvalidEvent("response has no output to read a prediction from")
    return result


def _from_scores(scores: dict[str, Any], where: str) -> Output:
    numbers: dict[str, float] = {}
    for name, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidEvent(f"score '{name}' in {where} must be a finite number")
        numbers[name] = float(value)
    if not numbers:
        raise InvalidEvent(f"{where} has no scores")
    best = max(numbers, key=numbers.__getitem__)
    prediction: Scalar = int(best) if best.isdigit() else best
    probabilities = all(0.0 <= v <= 1.0 for v in numbers.values())
    return Output(prediction, numbers[best] if probabilities else None, numbers)


# --- tensors -------------------------------------------------------------------------------------------------


def _v2_tensor(tensor: Any, where: str) -> _Column:
    if not isinstance(tensor, dict):
        raise InvalidEvent(f"'{where}' must be a tensor object")
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise InvalidEvent(f"'{where}' needs a 'name'")
    if datatype not in V2_DATATYPES:
        raise InvalidEvent(f"tensor '{name}' has unknown datatype {datatype!r}")
    if data is None:
        raise InvalidEvent(f"tensor '{name}' has no 'data' (binary tensor extension is not supported)")
    return _Column(name, _rows(_shape(shape, name), data, name, datatype == "BYTES"))


def _seldon_data(data: dict[str, Any], where: str) -> _Column:
    names = data.get("names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise InvalidEvent(f"'{where}.names' must be a list of strings")
    if "ndarray" in data:
        ndarray = data["ndarray"]
        if not isinstance(ndarray, list) or not ndarray:
            raise InvalidEvent(f"'{where}.ndarray' must be a non-empty list")
        rows = [_flatten(r) if isinstance(r, list) else [r] for r in _bounded(ndarray, f"{where}.ndarray")]
    elif "tensor" in data:
        tensor = data["tensor"]
        if not isinstance(tensor, dict):
            raise InvalidEvent(f"'{where}.tensor' must be an object with 'shape' and 'values'")
        rows = _rows(_shape(tensor.get("shape"), f"{where}.tensor"), tensor.get("values"), f"{where}.tensor", False)
    else:
        raise InvalidEvent(f"'{where}' has neither 'ndarray' nor 'tensor'")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InvalidEvent(f"the rows of '{where}' have different widths: {sorted(widths)}")
    if names and len(names) != widths.pop():
        raise InvalidEvent(f"'{where}.names' has {len(names)} names for rows of {len(rows[0])} values")
    return _Column(where, rows, list(names) if names else None)


def _shape(shape: Any, name: str) -> list[int]:
    if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape)):
        raise InvalidEvent(f"tensor '{name}' needs a 'shape' of non-negative integers")
    return shape


def _rows(shape: list[int], data: Any, name: str, text: bool) -> list[list[Any]]:
    if not isinstance(data, list):
        if text and isinstance(data, str) and math.prod(shape) == 1:
            data = [data]
        else:
            raise InvalidEvent(f"tensor '{name}' data must be a list")
    flat = _flatten(data)
    size = math.prod(shape)
    if len(flat) != size:
        raise InvalidEvent(f"tensor '{name}' has {len(flat)} values for shape {shape} ({size} expected)")
    batch = shape[0] if shape else 1
    if batch == 0:
        raise InvalidEvent(f"tensor '{name}' has an empty batch")
    if batch > MAX_ROWS:
        raise InvalidEvent(f"tensor '{name}' has {batch} rows, more than {MAX_ROWS}")
    width = size // batch
    return [flat[i * width:(i + 1) * width] for i in range(batch)]


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _bounded(items: list[Any], where: str) -> list[Any]:
    if len(items) > MAX_ROWS:
        raise InvalidEvent(f"'{where}' has {len(items)} rows, more than {MAX_ROWS}")
    return items


def _scalar(value: Any, where: str) -> Scalar:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return value
    raise InvalidEvent(f"'{where}' must be a number, string, boolean or null, got {type(value).__name__}")
