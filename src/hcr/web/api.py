"""The HTTP API (``hcr serve``): FastAPI on the library, models loaded once.

Endpoints (OpenAPI documentation at ``/docs``, schema at ``/openapi.json``):

- ``POST /v1/predict``: one character: label, confidence, top-k answers, blank/uncertain.
- ``POST /v1/read``: the text of a line, field or page, with each character's box and
  confidence (:class:`hcr.reader.Reader`; with a word/line model such as ``words``,
  :class:`hcr.reader.CrnnReader`, the CRNN engine for joined-up writing).
- ``GET /v1/models``: the models offered, with their task and classes.
- ``GET /health``: ``{"status": "ok", "version": ...}`` (liveness: the process answers).
- ``GET /ready``: 200 once every model offered is loaded, 503 before (readiness: a load
  balancer or Kubernetes sends requests only then; docs/deploy.md).

An image is sent either as ``multipart/form-data`` (the field ``file``) or as the request
body itself (``Content-Type: image/png``, ``image/jpeg``, ... or
``application/octet-stream``). Options are query parameters (or form fields of a multipart
upload): ``model``, ``top_k``, ``charset``, ``ignore_case``, ``threshold`` (and ``context``
for reading).

Every error is JSON of one shape, ``{"error": {"code": "...", "message": "..."}}``: 400
(not an image, corrupt, empty), 413 (over the upload limit), 415 (not an image content
type), 422 (bad parameter, unknown model, bad charset), 503 (too many requests waiting), 504
(over the per-request time limit), 500 (a bug or a broken model file).

The work of a request runs off the event loop under a time limit: decoding and
preprocessing on a bounded thread pool, forward passes batched across concurrent requests on
a thread of their own (:class:`_Runner`). The models come from one
:class:`hcr.web.service.ModelRegistry` shared by all requests (see there for why no lock is
needed around inference).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import HcrError, InputError, ModelFileError, UnknownNameError
from ..modelfile import TASKS
from ..preprocess import Preprocessed
from ..reading.char import Prediction, Predictor
from .service import DEFAULT_MAX_UPLOAD_BYTES, ModelRegistry, UploadTooLarge, check_upload, format_mb

log = logging.getLogger("hcr.web.api")
T = TypeVar("T")

#: What a server offers when given no models: every shipped character classifier, then the
#: word/line models (``/v1/read`` only): the tasks of :data:`hcr.modelfile.TASKS`.
SERVED_TASKS = TASKS


@dataclass
class ApiConfig:
    """Settings of :func:`create_app`.

    ``models``: pretrained names and/or model file paths (None: every shipped model, the
    character classifiers first; the first is the default). ``timeout_s``: per-request time limit for the work
    (None: none). ``workers``: threads that decode and preprocess (and read, for
    ``/v1/read``). ``max_pending``: requests
    admitted at once (queued or running); beyond it the API answers 503 at once. ``batch``:
    concurrent predictions share forward passes (see :class:`_Runner`).
    """

    models: Sequence[str] | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    timeout_s: float | None = 10.0
    workers: int = 4
    max_pending: int = 64
    preload: bool = True
    batch: bool = True
    cors_origins: Sequence[str] = field(default_factory=tuple)


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def _validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _clip(value: Any, limit: int = 100) -> Any:
    """A rejected input as echoed in an error's details: long strings shortened (a hostile
    request must not get its megabyte field back), other values as they are."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!s}... ({len(value):,} characters)"
    return value


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, by their
    Content-Length at once, or while they stream in when there is none."""

    def __init__(self, app: ASGIApp, max_bytes: int, message: str) -> None:
        self.app, self.max_bytes, self.message = app, max_bytes, message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = self.message
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await error_response(413, "too_large", message)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, "too_large", message)
            return msg

        await self.app(scope, limited, send)


# --------------------------------------------------------------------------- schemas


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="model name (GET /v1/models); default: the server's first model", max_length=200)
    charset: str | None = Field(None, max_length=256, description="answer only with these characters: digits, upper, lower, letters, alnum, or the characters themselves (e.g. 0123456789ABCDEF)")
    ignore_case: bool = Field(False, description="letters differing only by case are one answer")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="confidence below which an answer is marked uncertain")


class PredictOptions(_Options):
    top_k: int = Field(5, ge=1, le=100, description="how many ranked answers to return")


class ReadOptions(_Options):
    context: bool = Field(True, description="let a word's letters or digits settle its look-alike characters (O/0, l/1) and case")
    field: bool = Field(False, description="the image is one form field: answer its handwritten value only (no printed label, neighbouring rows or box lines); blank when it holds no handwriting")
    keep_printed: bool = Field(False, description="read printed words too (each word says whether it is printed); by default printed labels are left out")


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_image"])
    message: str = Field(examples=["upload.png: not an image file (or an unsupported format)"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class PredictResponse(BaseModel):
    model: str = Field(examples=["digits"])
    file: str | None = Field(None, description="the uploaded file name (multipart uploads)")
    label: str | None = Field(description="the answer; null when the image holds no character")
    confidence: float
    top_k: list[tuple[str, float]] = Field(description="ranked [answer, probability] pairs")
    blank: bool = Field(description="no character in the image")
    uncertain: bool = Field(description="confidence below the threshold")
    box: list[int] | None = Field(description="the ink's bounding box [x, y, width, height] in the image")
    seconds: float


class ReadCharacter(BaseModel):
    char: str
    confidence: float
    box: list[int] = Field(description="[x, y, width, height] in the image")
    top_k: list[tuple[str, float]]
    line: int
    word: int
    uncertain: bool
    mark: bool = Field(description="a punctuation mark recognised by its shape (confidence 1 by convention)")
    printed: bool = Field(description="part of a printed word (only with keep_printed)")


class ReadWordOut(BaseModel):
    text: str
    box: list[int]
    printed: bool = Field(description="a printed word (a form's label), not handwriting")


class ReadLineOut(BaseModel):
    text: str
    box: list[int]
    printed: bool = Field(description="every word of the line is printed")
    words: list[ReadWordOut]


class ReadResponse(BaseModel):
    model: str
    file: str | None = None
    text: str = Field(description="the lines, joined by newlines; empty when nothing is written")
    blank: bool = Field(description="nothing handwritten (or kept) was read: an empty field or page")
    field: bool = Field(description="read as one form field (the field option)")
    printed_only: bool = Field(description="writing was found, all of it printed")
    characters: list[ReadCharacter]
    lines: list[ReadLineOut]
    size: list[int] | None = Field(description="[width, height] of the image")
    seconds: float


class ModelInfo(BaseModel):
    name: str
    description: str
    source: str = Field(description="pretrained (shipped with hcr) or file")
    default: bool
    task: str = Field(description="classify (one character: /v1/predict and /v1/read) or sequence (words and lines, a CTC model: /v1/read only)")
    num_classes: int
    classes: list[str]
    classes_summary: str


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: str = "ok"
    version: str
    models: list[str]
    pid: int = Field(description="the server process that answered (hcr serve --processes N runs N)")


class ReadyResponse(BaseModel):
    status: str = Field(description="ready, or loading (HTTP 503) while models are still being loaded")
    models: list[str] = Field(description="the models offered")
    loading: list[str] = Field(description="the models not loaded yet (empty when ready)")
    pid: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "not an image, corrupt or empty (`invalid_image`, `empty_upload`, `bad_request`)"},
    413: {"model": ErrorResponse, "description": "over the upload limit (`too_large`)"},
    415: {"model": ErrorResponse, "description": "not an image content type (`unsupported_media_type`)"},
    422: {"model": ErrorResponse, "description": "bad parameter (`invalid_parameter`, `unknown_model`, `invalid_option`, `missing_file`)"},
    503: {"model": ErrorResponse, "description": "too many requests waiting (`busy`)"},
    504: {"model": ErrorResponse, "description": "over the per-request time limit (`timeout`)"},
}

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the image: a multipart upload (field `file`; options may also be form fields) or the raw image bytes",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}},
            "image/png": _BINARY,
            "image/jpeg": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}


# --------------------------------------------------------------------------- the app


def _is_image_type(mime: str) -> bool:
    return mime.startswith("image/") or mime == "application/octet-stream"


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, str | None, dict[str, str]]:
    """The image bytes, the uploaded file name and any other form fields of a request."""
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, str] = {}
    if mime == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=16)
        except StarletteHTTPException as e:  # python-multipart's parse errors, as Starlette reports them
            detail = str(e.detail).rstrip(".")[:200]
            message = (f"{detail}: send one image per request, in the field 'file', with at most 16 option fields" if detail.startswith("Too many")
                       else f"malformed multipart upload ({detail}): send multipart/form-data with its boundary and the image in the field 'file'")
            raise ApiError(e.status_code, "bad_request", message) from None
        try:
            upload = form.get("file")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "file"}
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "missing_file", "the multipart upload has no (complete) file part named 'file': send the image as the form field 'file'")
            part = (upload.content_type or "").split(";")[0].strip().lower()
            if part and not _is_image_type(part):
                raise ApiError(415, "unsupported_media_type", f"the uploaded file has content type {part!r}: send an image (image/png, image/jpeg, ...)")
            data, name = await upload.read(), upload.filename or None
        finally:
            await form.close()
    elif _is_image_type(mime):
        data, name = await request.body(), None
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"unsupported content type {mime or '(none)'!r}: send multipart/form-data with the image in the field 'file', "
                       "or the image itself as the body (image/png, image/jpeg, ... or application/octet-stream)")
    try:
        check_upload(data, name or "upload", max_bytes)
    except UploadTooLarge as e:
        raise ApiError(413, "too_large", str(e)) from None
    except InputError as e:
        raise ApiError(400, "empty_upload", str(e)) from None
    return data, name, fields


def _merge_options(options: BaseModel, fields: Mapping[str, str], cls: type[T]) -> T:
    """Query options overridden by form fields, validated together (422 on a bad one)."""
    if not fields:
        return options  # type: ignore[return-value]
    try:
        return cls.model_validate({**options.model_dump(exclude_unset=True), **fields})  # type: ignore[attr-defined,no-any-return]
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None


class _Runner:
    """Runs request work off the event loop: admits at most ``max_pending`` requests at
    once (503 beyond), enforces the per-request time limit (504), runs blocking work in a
    bounded thread pool (:meth:`call`) and batches predictions (:meth:`predict`).

    Batching (``/v1/predict``) is opportunistic: one forward pass runs at a time on its own
    thread, and the inputs that arrive while it runs go together into the next one. A lone
    request waits for nothing; under load, concurrent requests share forward passes (on a
    CPU a batch of 8 costs well under half of 8 single passes). ``/v1/read`` runs the reader
    on the pool threads (it already classifies an image's characters in one batch).
    """

    def __init__(self, workers: int, timeout_s: float | None, max_pending: int, batch: bool = True, max_batch: int = 64) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hcr-api")
        self.forward = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hcr-api-batch")
        self.timeout_s = timeout_s if timeout_s and timeout_s > 0 else None
        self.max_pending, self.batch, self.max_batch = max_pending, batch, max_batch
        self.pending = 0  # requests admitted; touched only on the event loop's thread
        self._queue: list[tuple[Predictor, Preprocessed, int, asyncio.Future[Prediction]]] = []
        self._busy = False

    async def run(self, job: Callable[[], Awaitable[T]]) -> T:
        """Admit a request and run ``job`` under the time limit."""
        if self.pending >= self.max_pending:
            raise ApiError(503, "busy", f"the server is busy ({self.pending} requests waiting); try again shortly")
        self.pending += 1
        try:
            return await asyncio.wait_for(job(), self.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the request took longer than the time limit ({self.timeout_s:g} s)") from None
        finally:
            self.pending -= 1

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the thread pool (dropped from the queue if the request times out first)."""
        return await asyncio.wrap_future(self.pool.submit(fn))

    async def predict(self, predictor: Predictor, pre: Preprocessed, top_k: int) -> Prediction:
        """:meth:`Predictor.predict_inputs` for one input, batched with concurrent ones."""
        if not self.batch:
            return (await self.call(lambda: predictor.predict_inputs([pre], top_k)))[0]
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append((predictor, pre, top_k, future))
        if not self._busy:
            self._start()
        return await future

    def _start(self) -> None:
        live = [item for item in self._queue if not item[3].done()]  # timed-out requests are dropped
        batch, self._queue = live[: self.max_batch], live[self.max_batch :]
        if not batch:
            return
        self._busy = True
        loop = asyncio.get_running_loop()
        job = self.forward.submit(_forward, [(p, x, k) for p, x, k, _ in batch])
        job.add_done_callback(lambda j: loop.call_soon_threadsafe(self._finish, batch, j))

    def _finish(self, batch: list[tuple[Predictor, Preprocessed, int, asyncio.Future[Prediction]]], job: Future[list[Prediction]]) -> None:
        self._busy = False
        try:
            results, error = job.result(), None
        except BaseException as e:  # noqa: BLE001  (handed to every request of the batch)
            results, error = [], e
        for i, (_, _, _, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[i])
        if self._queue:
            self._start()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.forward.shutdown(wait=False, cancel_futures=True)


def _forward(items: Sequence[tuple[Predictor, Preprocessed, int]]) -> list[Prediction]:
    """One batch: a forward pass per (predictor variant, top-k) group, answers in order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (predictor, _, top_k) in enumerate(items):
        groups.setdefault((id(predictor), top_k), []).append(i)
    out: list[Prediction | None] = [None] * len(items)
    for (_, top_k), idx in groups.items():
        predictor = items[idx[0]][0]
        for i, pred in zip(idx, predictor.predict_inputs([items[i][1] for i in idx], top_k)):
            out[i] = pred
    return [p for p in out if p is not None]


def _resolve(fn: Callable[[], T]) -> T:
    """Call ``fn`` (which picks a model variant), turning library errors into API errors."""
    try:
        return fn()
    except ModelFileError as e:
        raise ApiError(500, "model_error", str(e)) from None
    except UnknownNameError as e:
        raise ApiError(422, "unknown_model", str(e)) from None
    except HcrError as e:
        raise ApiError(422, "invalid_option", str(e)) from None


def create_app(config: ApiConfig | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    """The FastAPI application. Models are loaded here (``config.preload``), so a broken
    model file stops a server before it takes requests."""
    config = config or ApiConfig()
    registry = registry or ModelRegistry(config.models, tasks=SERVED_TASKS)
    if config.preload:
        registry.preload()
    runner = _Runner(config.workers, config.timeout_s, config.max_pending, batch=config.batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        runner.shutdown()

    app = FastAPI(
        title="hcr: handwritten character recognition",
        version=__version__,
        description="Read handwritten characters and text. Send an image as a multipart upload (field `file`) "
                    "or as the raw request body; every error is `{\"error\": {\"code\", \"message\"}}`.",
        lifespan=lifespan,
    )
    app.state.registry, app.state.config, app.state.runner = registry, config, runner
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(_BodyLimit, max_bytes=config.max_upload_bytes + 64 * 1024,  # room for multipart framing and fields
                       message=f"the upload is larger than the limit ({format_mb(config.max_upload_bytes)})")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.code, e.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        details = jsonable_encoder([{k: _clip(v) if k == "input" else v for k, v in err.items() if k in ("loc", "msg", "type", "input")} for err in errors])
        return error_response(422, "invalid_parameter", _validation_message(errors), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_response(e.status_code, _HTTP_CODES.get(e.status_code, "http_error"), str(e.detail))

    @app.exception_handler(Exception)
    async def _internal(_: Request, e: Exception) -> JSONResponse:
        log.exception("internal error")
        return error_response(500, "internal_error", f"internal error ({type(e).__name__}); see the server log")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", response_model=HealthResponse, summary="liveness check")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "models": registry.names(), "pid": os.getpid()}

    @app.get("/ready", response_model=ReadyResponse, summary="readiness check: 200 once the models are loaded, 503 before",
             responses={503: {"model": ReadyResponse, "description": "models still loading"}})
    async def ready() -> JSONResponse:
        loaded = set(registry.loaded())
        loading = [name for name in registry.names() if name not in loaded]
        body = {"status": "loading" if loading else "ready", "models": registry.names(), "loading": loading, "pid": os.getpid()}
        return JSONResponse(body, status_code=503 if loading else 200)

    @app.get("/v1/models", response_model=ModelsResponse, summary="the models this server offers")
    def models() -> dict[str, Any]:  # sync: FastAPI runs it in its thread pool (may load models)
        return {"default": registry.default, "models": registry.describe()}

    @app.post("/v1/predict", summary="recognise one character", responses={200: {"model": PredictResponse}, **_ERRORS}, openapi_extra=_IMAGE_BODY)
    async def predict(request: Request, options: Annotated[PredictOptions, Query()]) -> JSONResponse:
        """One character per image: the answer, its confidence and the ranked alternatives.
        A blank image answers ``label: null, blank: true``."""
        data, name, fields = await _read_upload(request, config.max_upload_bytes)
        opts = _merge_options(options, fields, PredictOptions)

        async def work() -> dict[str, Any]:
            t0 = time.perf_counter()

            def prepare() -> tuple[Predictor, Preprocessed]:
                predictor = _resolve(lambda: registry.predictor(opts.model, charset=opts.charset, ignore_case=opts.ignore_case, threshold=opts.threshold))
                try:
                    return predictor, predictor.preprocess(data, name=name or "upload")
                except InputError as e:
                    raise ApiError(400, "invalid_image", str(e)) from None

            predictor, pre = await runner.call(prepare)
            pred = await runner.predict(predictor, pre, opts.top_k)
            pred.file = name
            out = pred.to_dict()
            out.pop("error", None)
            return {"model": registry.entry(opts.model).name, **out, "seconds": round(time.perf_counter() - t0, 5)}

        return JSONResponse(await runner.run(work))

    @app.post("/v1/read", summary="read the text in an image", responses={200: {"model": ReadResponse}, **_ERRORS}, openapi_extra=_IMAGE_BODY)
    async def read(request: Request, options: Annotated[ReadOptions, Query()]) -> JSONResponse:
        """A line, a field or a page of separately written characters: the text, and per
        character its box, answer, confidence and alternatives."""
        data, name, fields = await _read_upload(request, config.max_upload_bytes)
        opts = _merge_options(options, fields, ReadOptions)

        def work() -> dict[str, Any]:
            reader = _resolve(lambda: registry.reader(opts.model, charset=opts.charset, ignore_case=opts.ignore_case, threshold=opts.threshold, context=opts.context, keep_printed=opts.keep_printed))
            try:
                result = reader.read(data, name=name or "upload", field=opts.field)
            except InputError as e:
                raise ApiError(400, "invalid_image", str(e)) from None
            result.file = name
            out = result.to_dict()
            out.pop("error", None)
            return {"model": registry.entry(opts.model).name, **out}

        return JSONResponse(await runner.run(lambda: runner.call(work)))

    return app


def _set_op_threads(n: int | None) -> None:
    """Threads one PyTorch or OpenCV operation may use (None: the libraries' defaults).
    A server runs requests side by side, so one thread per operation serves best: OpenCV's
    parallel loops on small images cost more CPU than they save (1.1 ms more per image
    preprocessed, measured on 2 cores)."""
    if n:
        import cv2

        cv2.setNumThreads(n)
        try:  # an inference-only install (ONNX models, docs/deploy.md) has no torch
            import torch
        except ImportError:
            return
        torch.set_num_threads(n)


def _serve_process(host: str, port: int, config: ApiConfig, op_threads: int | None, log_level: str) -> None:
    """One process of ``hcr serve --processes N``: the app on a listening socket of its own,
    bound to the shared port with ``SO_REUSEPORT`` once the models are loaded, so that the
    kernel spreads new connections over the processes. (With one shared socket, a burst of
    keep-alive connections all goes to whichever process accepts first, and stays there.)"""
    import socket

    import uvicorn

    _set_op_threads(op_threads)
    app = create_app(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


def _serve_processes(host: str, port: int, config: ApiConfig, op_threads: int | None, processes: int, log_level: str) -> None:
    """Run ``processes`` :func:`_serve_process` until interrupted (Ctrl-C or SIGTERM stops
    them all; a process that fails, e.g. on a port in use, stops the others)."""
    import multiprocessing
    import signal
    import socket

    if not hasattr(socket, "SO_REUSEPORT"):
        raise HcrError("--processes above 1 needs SO_REUSEPORT (Linux, macOS, BSD); run one process per port instead")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # without SO_REUSEPORT this fails on a port anyone listens on, another hcr serve included
            probe.bind((host, port))
        except OSError as e:
            raise HcrError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if config.preload:
        ModelRegistry(config.models, tasks=SERVED_TASKS).preload()  # a broken model file stops us here, not in every process
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_serve_process, args=(host, port, config, op_threads, log_level), name=f"hcr-serve-{i}")
             for i in range(processes)]

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                raise HcrError(f"a server process stopped (exit code {failed[0]}); see its messages above")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(15)


def serve(host: str = "127.0.0.1", port: int = 8000, config: ApiConfig | None = None, *, op_threads: int | None = 1,
          processes: int = 1, log_level: str = "info") -> None:
    """Run the API with uvicorn until interrupted.

    ``op_threads``: threads one PyTorch or OpenCV operation may use (1: requests run side by
    side instead of each spreading over every core, which serves small images faster; None:
    the libraries' defaults). ``processes`` > 1 runs that many server processes on the one
    port, each with its own copy of the models: Python runs one thread at a time per
    process, so on a machine with several cores one process per core serves more requests.
    """
    config = config or ApiConfig()
    if processes > 1:
        _serve_processes(host, port, config, op_threads, processes, log_level)
        return
    import uvicorn

    _set_op_threads(op_threads)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)


__all__ = ["ApiConfig", "ApiError", "create_app", "error_response", "serve"]
