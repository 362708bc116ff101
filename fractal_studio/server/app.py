"""The HTTP API of `fractal-studio serve` (FastAPI): requests in, jobs for the one worker, answers out.

    POST /api/v1/inpaint | /outpaint | /uncrop | /edit    multipart image (+ mask), options → image/png
    POST /api/v1/jobs                                     the same with `task` → 202 {"id": ...}
    GET  /api/v1/jobs/{id}  /events (SSE)  /result        DELETE /api/v1/jobs/{id} cancels
    GET  /api/v1/health  /api/v1/models                   /docs: the OpenAPI page

`options` is a JSON object of the CLI's edit options under their flag's name ("seed", "cfg",
"work_scale", "class", "iterations": [64, 16] or "64,16", "seamless": false, ...), plus "model";
every option is checked as the CLI checks it (editing/options.py) and a mistake answers 400 with
{"error": "<the line the CLI prints>"}; an input over a size limit answers 413, a full queue 503
with Retry-After. With a token, every request needs `Authorization: Bearer TOKEN`.
Nothing here computes pixels: the worker runs editing/tasks.edit_image, as `batch` does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from fractal_studio import __version__
from fractal_studio.cli import common
from fractal_studio.editing.options import OPTIONS, EditOptions
from fractal_studio.editing.tasks import MASKED, TASKS, Task
from fractal_studio.errors import TooLarge, UserError
from fractal_studio.sampling.validation import parse_iterations
from fractal_studio.server.jobs import DONE, FINAL, Job, QueueFull, Worker
from fractal_studio.untrusted import MAX_IMAGE_FILE_BYTES, load_json, printable

log = logging.getLogger(__name__)

API = "/api/v1"
MAX_OPTIONS_BYTES = 64 << 10  # the options field: a few hundred bytes
# A request holds an image and a mask: the CLI's limit for each, plus the form's own bytes.
MAX_REQUEST_BYTES = 2 * MAX_IMAGE_FILE_BYTES + (1 << 20)
POLL_SECONDS = 0.02  # how often a waiting request or an event stream looks at its job
# Each option's JSON key: its CLI flag without the dashes ("work_scale", "class", "seamless").
OPTION_KEYS = {common.option_flag(name)[2:].replace("-", "_"): name
               for name, option in OPTIONS.items() if option.cli}
PNG = {200: {"content": {"image/png": {}}, "description": "the first (best) candidate, with its record"}}


class BodyTooLarge(HTTPException):
    """Raised while the body arrives (an HTTPException, so FastAPI passes it on unchanged)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request is larger than the server's limit of {_size(limit)}")


def parse_options(text: str | None) -> tuple[EditOptions, str | None, str | None]:
    """(the options, the class as given, the model as given) of a request's `options` JSON."""
    if text is None or not text.strip():
        return EditOptions(), None, None
    if len(text.encode()) > MAX_OPTIONS_BYTES:
        raise TooLarge(f"options is more than {_size(MAX_OPTIONS_BYTES)}; it holds a few options")
    data = load_json(text, "options", max_depth=4)
    if not isinstance(data, dict):
        raise UserError('options must be a JSON object such as {"seed": 1, "cfg": 2}')
    model = data.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise UserError(f"options.model must be a model's name or file, got {printable(model)[:40]}")
    values, class_text = {}, None
    for key, value in data.items():
        name = OPTION_KEYS.get(str(key).replace("-", "_"))
        if name is None:
            raise UserError(f"unknown option {printable(key)[:40]!r} in options; the options are "
                            f"{', '.join(sorted(OPTION_KEYS))} and model")
        if name == "class_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
                raise UserError(f"options.class must be a class id or name, got {printable(value)[:40]}")
            class_text = None if value is None else str(value)
        elif name == "iterations" and isinstance(value, str):
            values[name] = parse_iterations(value, option="options.iterations")
        elif name == "iterations" and isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    names = {name: f"options.{key}" for key, name in OPTION_KEYS.items()}
    return EditOptions(**values).validate(names), class_text, model


def create_app(worker: Worker, *, token: str | None = None, cors: tuple[str, ...] = (),
               max_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    app = FastAPI(title="Fractal Studio", version=__version__,
                  description="Edit images with fractal generative models: inpaint, outpaint, uncrop, "
                              "class edits; every option as the command line takes it.")
    app.state.worker = worker
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Job-Id", "X-Candidates", "Retry-After"])
    app.add_middleware(Guard, token=token, max_bytes=max_bytes)
    _errors(app)
    _routes(app, worker)
    return app


# ------------------------------------------------------------------------------------ the gate
class Guard:
    """Every request: the token (when there is one), then the body's size, before any route."""

    def __init__(self, app, token: str | None, max_bytes: int):
        self.app, self.token, self.max_bytes = app, token, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.lower(): value for key, value in scope.get("headers", [])}
        if self.token is not None:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                answer = error_response(401, "this server needs its token: send the header "
                                             "'Authorization: Bearer TOKEN'")
                answer.headers["WWW-Authenticate"] = "Bearer"
                return await answer(scope, receive, send)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await error_response(413, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": printable(message)}, status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def user_error(request, error: UserError):
        return error_response(413 if isinstance(error, TooLarge) else 400, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        problems = []
        for item in error.errors()[:3]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query"))
            problems.append(f"{where}: {item.get('msg', 'invalid')}".lower())
        return error_response(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(Exception)
    async def internal(request, error: Exception):
        log.exception("request %s failed", request.url.path)
        return error_response(500, f"internal error ({type(error).__name__}); the server log has the details")


# ---------------------------------------------------------------------------------- the routes
def _routes(app: FastAPI, worker: Worker) -> None:
    @app.get(f"{API}/health")
    async def health():
        running = worker.running
        return {"status": "ok", "version": __version__, "device": worker.device_name(),
                "queued": worker.waiting(), "running": None if running is None else running.id}

    @app.get(f"{API}/models")
    async def models():
        return await asyncio.to_thread(model_list, worker.settings.model)

    @app.post(f"{API}/inpaint", responses=PNG, response_class=FileResponse)
    async def inpaint(request: Request, image: UploadFile = File(...), mask: UploadFile = File(...),
                      options: str | None = Form(None)):
        """Fills the white area of `mask` (the image's size) with generated pixels."""
        return await run_now(request, worker, await make_job(worker, Task("inpaint"), image, mask, options))

    @app.post(f"{API}/edit", responses=PNG, response_class=FileResponse)
    async def edit(request: Request, image: UploadFile = File(...), mask: UploadFile = File(...),
                   options: str | None = Form(None)):
        """Regenerates the masked area as the class in options.class."""
        return await run_now(request, worker, await make_job(worker, Task("edit"), image, mask, options))

    @app.post(f"{API}/outpaint", responses=PNG, response_class=FileResponse)
    async def outpaint(request: Request, image: UploadFile = File(...), extend: str = Form(...),
                       options: str | None = Form(None)):
        """Extends the canvas by `extend` (left,top,right,bottom pixels) and generates the new area."""
        task = Task("outpaint", extend=_extend(extend))
        return await run_now(request, worker, await make_job(worker, task, image, None, options))

    @app.post(f"{API}/uncrop", responses=PNG, response_class=FileResponse)
    async def uncrop(request: Request, image: UploadFile = File(...), scale: float = Form(...),
                     options: str | None = Form(None)):
        """Shrinks the image into the middle of the canvas by `scale` (> 1) and generates the border."""
        task = Task("uncrop", scale=scale)
        return await run_now(request, worker, await make_job(worker, task, image, None, options))

    @app.post(f"{API}/jobs", status_code=202)
    async def new_job(task: str = Form(...), image: UploadFile = File(...),
                      mask: UploadFile | None = File(None),
                      extend: str | None = Form(None), scale: float | None = Form(None),
                      options: str | None = Form(None)):
        """Queues an edit (task inpaint, outpaint, uncrop or edit) and answers at once with its id."""
        if task not in TASKS:
            raise UserError(f"unknown task {printable(task)[:40]!r}; tasks are {', '.join(TASKS)}")
        edit_task = Task(task, extend=None if extend is None else _extend(extend), scale=scale)
        job = await make_job(worker, edit_task, image, mask, options)
        submit(worker, job)
        return JSONResponse(_links(job.describe()), status_code=202)

    @app.get(f"{API}/jobs/{{job_id}}")
    async def job_state(job_id: str):
        return _links(find(worker, job_id).describe())

    @app.delete(f"{API}/jobs/{{job_id}}")
    async def cancel_job(job_id: str):
        job = find(worker, job_id)
        worker.cancel(job)
        return job.describe()

    @app.get(f"{API}/jobs/{{job_id}}/result", responses=PNG, response_class=FileResponse)
    async def job_result(job_id: str, candidate: int = 1):
        job = find(worker, job_id)
        if job.state != DONE:
            if job.state in FINAL:
                return error_response(job.status, job.error or job.state)
            return error_response(409, f"job {job.id} is {job.state}; its result comes when it is done")
        if not 1 <= candidate <= len(job.results):
            return error_response(404, f"job {job.id} has candidates 1..{len(job.results)}")
        return FileResponse(job.results[candidate - 1], media_type="image/png",
                            headers={"X-Candidates": str(len(job.results))})

    @app.get(f"{API}/jobs/{{job_id}}/events")
    async def job_events(job_id: str):
        """Server-sent events: `state`, `progress` (level, step, fraction, eta), `preview` (the
        changed rectangle as a base64 PNG, twice a second at most), then `done`, `failed` or `cancelled`."""
        job = find(worker, job_id)
        return StreamingResponse(event_stream(job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _links(described: dict) -> dict:
    job_id = described["id"]
    described["events"] = f"{API}/jobs/{job_id}/events"
    described["result"] = f"{API}/jobs/{job_id}/result"
    return described


def _extend(text: str) -> tuple[int, ...]:
    return common.parse_ints(text, 4, "extend", "0,0,256,0")


def find(worker: Worker, job_id: str) -> Job:
    job = worker.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {printable(job_id)[:40]!r} (ended jobs are kept for a while only)")
    return job


def submit(worker: Worker, job: Job) -> None:
    try:
        worker.submit(job)
    except QueueFull:
        shutil.rmtree(job.folder, ignore_errors=True)
        wait = max(1, math.ceil(worker.mean_seconds * (worker.waiting() + 1)))
        raise HTTPException(503, f"the server is busy ({worker.waiting()} edits are waiting); try again "
                                 f"in {wait} s", headers={"Retry-After": str(wait)}) from None


async def make_job(worker: Worker, task: Task, image: UploadFile, mask: UploadFile | None,
                   options: str | None) -> Job:
    """The request checked as the CLI checks its options and files, then a job (not yet queued)."""
    task.checked()
    options, class_text, model = parse_options(options)
    model_path = common.resolve_model_path(model or worker.settings.model)
    if task.kind in MASKED and mask is None:
        raise UserError(f"{task.kind} needs a mask (the form field 'mask')")
    if task.kind == "edit" and class_text is None:
        raise UserError('edit needs a class: give options.class, e.g. {"class": "tabby"}')
    folder = Path(tempfile.mkdtemp(prefix="fractal-studio-job-"))
    try:
        await _save(image, folder / "image")
        if task.kind in MASKED:
            await _save(mask, folder / "mask")
        doc, mask_array = await asyncio.to_thread(_read, folder, task)
        task.check_size(*doc.size)
        return Job.new(folder, task, options, class_text, model_path, doc=doc, mask=mask_array)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


async def _save(upload: UploadFile, path: Path) -> None:
    with open(path, "wb") as out:
        while block := await upload.read(1 << 20):
            out.write(block)


def _read(folder: Path, task: Task):
    """The upload decoded as the CLI decodes files (limits, damage, EXIF, alpha), in its words."""
    from fractal_studio.editing.document import Document
    from fractal_studio.editing.imageio import load_mask

    try:
        doc = Document.open(folder / "image")
        mask = load_mask(folder / "mask", size=doc.size) if task.masked else None
    except UserError as error:
        raise type(error)(str(error).replace(f"{folder}/", "")) from None
    finally:
        for name in ("image", "mask"):  # decoded: the folder is for the results now
            (folder / name).unlink(missing_ok=True)
    return doc, mask


async def run_now(request: Request, worker: Worker, job: Job):
    """Queues `job`, waits for it (cancelling it if the client goes away) and answers its result."""
    job.keep = False
    submit(worker, job)
    while not job.finished.is_set():
        if await request.is_disconnected():
            worker.cancel(job)
            break
        await asyncio.sleep(POLL_SECONDS)
    await asyncio.to_thread(job.finished.wait)
    if job.state != DONE:
        worker.forget(job)
        return error_response(job.status, job.error or job.state)
    headers = {"X-Job-Id": job.id, "X-Candidates": str(len(job.results))}
    return FileResponse(job.results[0], media_type="image/png", headers=headers,
                        background=BackgroundTask(worker.forget, job))


async def event_stream(job: Job):
    seen, preview, state = -1, None, None
    yield "retry: 1000\n\n"
    while True:
        if job.serial != seen:
            seen = job.serial
            if job.state != state and job.state not in FINAL:
                state = job.state
                yield _event("state", {"id": job.id, "state": state})
            if job.progress is not None:
                yield _event("progress", job.progress)
            shown = job.preview
            if shown is not None and shown is not preview:
                preview = shown
                (x, y, w, h), png = shown
                yield _event("preview", {"rect": [x, y, w, h], "png": base64.b64encode(png).decode()})
            if job.state in FINAL:
                yield _event(job.state, _links(job.describe()))
                return
        await asyncio.sleep(POLL_SECONDS * 2)


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def model_list(default: str | None) -> list[dict]:
    from fractal_studio.model.catalog import available_models
    from fractal_studio.model.weights import read_config

    chosen = common.resolve_model_path(default)
    out = []
    for model in available_models():
        entry = {"name": model.name, "default": Path(model.path) == chosen}
        try:
            config = read_config(model.path)
        except UserError as error:
            entry["error"] = printable(error)
        else:
            entry.update(resolution=config.resolution, conditional=config.conditional,
                         classes=common.class_names(config) if config.conditional else [])
        out.append(entry)
    return out


def _size(count: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= size:
            return f"{count / size:g} {unit}"
    return f"{count} bytes"
