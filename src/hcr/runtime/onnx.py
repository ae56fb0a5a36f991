"""ONNX: :class:`OnnxBackend` runs a file with onnxruntime on the CPU (nothing else imported:
the torch-free inference install), :func:`check_onnx_weights` refuses forged files before
onnxruntime sees them, and :func:`write_onnx` exports a network (``torch.onnx``, imported
only then), optionally quantised to int8 (:func:`quantize_onnx`).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from .. import __version__
from ..errors import HcrError, ModelFileError
from ..modelfile import META_KEY, ModelMeta, check_outputs, sidecar_path
from .base import Backend, check_input_shape, first_line, network_layout

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: The ONNX opset written.
OPSET = 17


class OnnxBackend(Backend):
    """An ONNX file run by onnxruntime on the CPU (imports nothing else)."""

    format = "onnx"
    batch_size = 64  # small convolution batches stay in cache: faster per image than 512 on CPUs

    def __init__(self, path: str | os.PathLike[str], meta: ModelMeta | None = None, *, threads: int | None = None) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the ONNX file ({e.strerror or e})") from None
        self._open(data, meta, threads, str(path))

    def __getstate__(self) -> dict[str, Any]:
        """The file's bytes, metadata and options; never the onnxruntime session."""
        return {"data": self._data, "meta": self.meta, "threads": self.threads, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["data"], state["meta"], state["threads"], state["source"])

    def _open(self, data: bytes, meta: ModelMeta | None, threads: int | None, where: str) -> None:
        """Start an onnxruntime session on the model ``data`` (read from ``where``)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise HcrError(f"{where}: running ONNX models needs onnxruntime: pip install 'hcr-toolkit[onnx]' (or onnxruntime)") from None
        self._data, self.threads = data, threads
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # worker threads sleep instead of spinning between runs: spinning wins a little on an
        # idle machine and loses badly (2x here) when the cores are shared with other work
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        check_onnx_weights(data, where)  # before onnxruntime allocates anything the file declares
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"{where}: not a readable ONNX model (corrupt, truncated or unsupported: {first_line(e)})") from None
        if meta is None:
            text = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
            if text is None:
                raise ModelFileError(f"{where}: the ONNX file holds no hcr metadata and has no sidecar {sidecar_path(where).name}: export it with hcr export, or write the sidecar")
            meta = ModelMeta.from_json(text, where)
        inp = self.session.get_inputs()
        if len(inp) != 1:
            raise ModelFileError(f"{where}: expected a network with one input, got {len(inp)}")
        self.input_name = inp[0].name
        meta = replace(meta, layout=network_layout(inp[0].shape, where))
        check_input_shape(meta, inp[0].shape, where)
        out_shape = self.session.get_outputs()[0].shape
        check_outputs(meta, out_shape[-1] if isinstance(out_shape[-1], int) else None, where)
        super().__init__(meta, where)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]



#: the shipped models hold about 4 MB, and protobuf itself caps a file at 2 GiB.
MAX_ONNX_WEIGHT_BYTES = 2 * 2**30

#: Bytes per element of ONNX ``TensorProto.DataType`` codes (unknown codes count 8).
_ONNX_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 1, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
                  17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}


def _proto_fields(buf: memoryview) -> Any:
    """(field number, wire type, value) of each field of one protobuf message: an int for
    varints and fixed-size fields, a memoryview (no copy) for length-delimited ones. Raises
    ValueError on a malformed message."""
    i, n = 0, len(buf)

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated or overlong varint")
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < n:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise ValueError("truncated fixed-size field")
            yield number, wire, int.from_bytes(buf[i : i + size], "little")
            i += size
        elif wire == 2:
            size = varint()
            if i + size > n:
                raise ValueError("a field runs past the end of the file")
            yield number, wire, buf[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _onnx_tensor(buf: memoryview, where: str) -> int:
    """Bytes a ``TensorProto`` declares (its dims times its element size); refuses external data."""
    dims: list[int] = []
    dtype, name = 1, ""
    for number, wire, value in _proto_fields(buf):
        if number == 1:  # dims: repeated int64, packed or not
            if wire == 2:
                dims.extend(_packed_varints(value))
            else:
                dims.append(value)
        elif number == 2 and wire == 0:
            dtype = value
        elif number == 8 and wire == 2:
            name = bytes(value[:80]).decode("utf-8", "replace")
        elif (number == 13 and wire == 2) or (number == 14 and wire == 0 and value == 1):  # external_data / data_location EXTERNAL
            raise ModelFileError(f"{where}: the tensor {name or '(unnamed)'!r} refers to data in another file (ONNX external data); "
                                 "hcr loads self-contained ONNX files only (export the model again with hcr export)")
    total = _ONNX_ITEMSIZE.get(dtype, 8)
    for d in dims:
        d = d - 2**64 if d >= 2**63 else d  # int64 as two's complement
        if d < 0:
            raise ModelFileError(f"{where}: the tensor {name or '(unnamed)'!r} declares a negative dimension ({d})")
        total *= d
    return total


def _packed_varints(buf: memoryview) -> list[int]:
    """The values of a packed repeated varint field."""
    out: list[int] = []
    value = shift = 0
    for b in bytes(buf):
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            out.append(value)
            value = shift = 0
        elif shift > 63:
            raise ValueError("overlong varint")
    if shift:
        raise ValueError("truncated varint")
    return out


def _onnx_graph_weights(buf: memoryview, where: str, depth: int = 0) -> int:
    """Bytes of the constant tensors a ``GraphProto`` declares: its initialisers and the tensors
    of its nodes' attributes (Constant nodes), subgraphs (If, Loop, Scan) included."""
    if depth > 32:
        raise ModelFileError(f"{where}: subgraphs nested over 32 deep")
    total = 0
    for number, wire, value in _proto_fields(buf):
        if wire != 2:
            continue
        if number == 5:  # initializer
            total += _onnx_tensor(value, where)
        elif number == 15:  # sparse_initializer: values (1) and indices (2)
            total += sum(_onnx_tensor(v, where) for n, w, v in _proto_fields(value) if w == 2 and n in (1, 2))
        elif number == 1:  # node -> attribute (5) -> t (5), tensors (11), g (6), graphs (10)
            for an, aw, attr in _proto_fields(value):
                if an != 5 or aw != 2:
                    continue
                for fn, fw, fv in _proto_fields(attr):
                    if fw != 2:
                        continue
                    if fn in (5, 11):
                        total += _onnx_tensor(fv, where)
                    elif fn in (6, 10):
                        total += _onnx_graph_weights(fv, where, depth + 1)
    return total


def check_onnx_weights(data: bytes, where: str, limit: int = MAX_ONNX_WEIGHT_BYTES) -> int:
    """The bytes of constant weights the ONNX model ``data`` declares, read from the file's
    own structure before onnxruntime sees it: a tensor whose dimensions declare more than
    ``limit`` in all (a forged 16 GB initialiser, whatever its actual bytes), a tensor stored
    in another file (external data), or a malformed file is a :class:`ModelFileError`."""
    try:
        graphs = [v for n, w, v in _proto_fields(memoryview(data)) if n == 7 and w == 2]  # ModelProto.graph
        total = sum(_onnx_graph_weights(g, where) for g in graphs)
    except ValueError as e:
        raise ModelFileError(f"{where}: not a readable ONNX model (corrupt or truncated: {e})") from None
    if not graphs:
        raise ModelFileError(f"{where}: not a readable ONNX model (no graph)")
    if total > limit:
        raise ModelFileError(f"{where}: the model declares {total / 2**30:,.1f} GiB of weights, over the {limit / 2**30:g} GiB limit "
                             "(a forged or corrupt file)")
    return total


def require_onnx() -> None:
    """ONNX export writes with the ``onnx`` package (onnxruntime alone runs, not writes)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise HcrError(f"ONNX export needs {' and '.join(missing)}: pip install 'hcr-toolkit[onnx]'")


def onnx_bytes(model: nn.Module, meta: ModelMeta, opset: int = OPSET) -> bytes:
    """The network exported with ``torch.onnx`` (dynamic batch, and width for a CRNN), metadata inside."""
    import onnx
    import torch

    from .torch import example_input

    buf = io.BytesIO()
    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if meta.task == "sequence":
        dynamic = {"input": {0: "batch", 3: "width"}, "logits": {0: "batch", 1: "columns"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in favour of dynamo (needs onnxscript)
        torch.onnx.export(model, (example_input(meta),), buf, dynamo=False, opset_version=opset, input_names=["input"],  # type: ignore[arg-type]
                          output_names=["logits"], dynamic_axes=dynamic, do_constant_folding=True)  # (the legacy exporter writes to a buffer)
    proto = onnx.load_from_string(buf.getvalue())
    _set_onnx_meta(proto, meta)
    return proto.SerializeToString()


def write_onnx(model: nn.Module, meta: ModelMeta, out: Path) -> None:
    """:func:`onnx_bytes` written to ``out``."""
    out.write_bytes(onnx_bytes(model, meta))


def _set_onnx_meta(proto: Any, meta: ModelMeta) -> None:
    import onnx

    keep = {p.key: p.value for p in proto.metadata_props if p.key != META_KEY}
    onnx.helper.set_model_props(proto, {**keep, META_KEY: meta.to_json()})
    proto.producer_name, proto.producer_version = "hcr", __version__
    proto.doc_string = f"hcr {meta.describe()}: input (N,1,H,W) float32 in [0,1], ink bright; output {meta.output}"


def _calibration_reader(batches: Sequence[np.ndarray]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.it: Iterator[np.ndarray] = (x[i : i + 32, None] for x in batches for i in range(0, len(x), 32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"input": np.ascontiguousarray(x, np.float32)}

    return Reader()


def quantize_onnx(fp32: Path, out: Path, meta: ModelMeta, calibration: Sequence[np.ndarray]) -> None:
    """int8 weights (per channel) and activations: onnxruntime's static QDQ quantisation,
    calibrated on ``calibration``, batches of real inputs (:func:`hcr.export.parity_inputs`
    with another seed: embedded digits, or lines of them for the CRNN, whose LSTM stays in float)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(fp32), str(out), _calibration_reader(calibration), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    proto = onnx.load(str(out))
    _set_onnx_meta(proto, meta)
    out.write_bytes(proto.SerializeToString())
