"""The FastAPI application: the upscaling page and its JSON API.

API (also described at /docs and /openapi.json):

- `GET /api/models`: the models a request may name, with their native scale, and the default one.
- `POST /api/upscale`: multipart form with `image` (the file), optional `model` and `outscale`.
  Every upload becomes a job, whatever its size, so clients have one code path: the answer is
  `202 Accepted` with the job (and a `Location` header), or `503` with `Retry-After` when the
  waiting line is full (`429` when this client already has `--max-jobs-per-client` jobs in it).
- `GET /api/jobs/{id}`: status (`queued`, `running`, `done`, `failed`), progress 0-1 and the
  position in the waiting line.
- `GET /api/jobs/{id}/result`: the upscaled image as PNG, once the job is done, named like `srgan
  upscale` names its outputs: `<stem of the uploaded file>_<model>_x<scale>.png`.

Every request is first checked against DNS rebinding and other machines: its `Host` header must name
this server (the bound address, loopback names, names from `--allow-host`, and on a server listening
on every interface its host name and any IP address; 403 otherwise), then
when the server has a token (always when it listens beyond loopback) the request must carry it, as
`Authorization: Bearer TOKEN` or in the cookie that opening `/?token=TOKEN` sets (401 otherwise).

Errors are JSON `{"error": "..."}` with the matching status code. Uploads are checked in this order:
the `Origin` of browser requests (403 unless it is this server), body size while it streams in (413),
the image header (415 if it is no image, 413 if it has too many pixels), then a full decode (422 if
truncated or corrupt). Results are PNG and stay available for the server's `--keep-minutes`, while
all kept results together stay under `--max-kept-mb` (the oldest are deleted first).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import math
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from srgan import __version__
from srgan.batch import default_suffix
from srgan.errors import SrganError
from srgan.imageio import read_image
from srgan.serve.engine import UpscaleEngine
from srgan.serve.jobs import ClientLimitError, Job, JobQueue, JobStatus, QueueFullError

logger = logging.getLogger("srgan.serve")

STATIC_DIR = Path(__file__).parent / "static"

# Room for the multipart boundaries, part headers and the small text fields around the image bytes.
_FORM_OVERHEAD_BYTES = 64 * 1024
MAX_OUTSCALE = 8.0

_UPLOAD_NAME = "upload"
# Shown to clients in place of the server-side temporary path that imageio's messages start with.
_CLIENT_IMAGE_NAME = "uploaded image"
# Dropped from the upload's name before it names the download.
_UNSAFE_NAME_CHARACTERS = re.compile(r'[\x00-\x1f\x7f"*:<>?|\\/]')
_MAX_STEM_CHARACTERS = 100

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The browser keeps the token in this cookie once `/?token=...` has been opened.
TOKEN_COOKIE = "srgan_token"


@dataclass(frozen=True)
class ServerSettings:
    """Limits and access rules. `max_jobs_per_client`: jobs one client address may have waiting or
    running (None: no limit); `allowed_hosts`: host names (no port, lower case) a request's `Host` may
    give, and with `any_ip_host` any IP address too (a server listening on every interface is reached by
    each of its addresses; DNS rebinding needs a domain name); `token`: the secret every request must
    carry (None: none needed)."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 4_000_000
    queue_size: int = 8
    result_ttl_s: float = 3600.0
    max_kept_bytes: int = 1024 * 1024 * 1024
    max_jobs_per_client: int | None = None
    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS
    any_ip_host: bool = False
    token: str | None = None


class _UploadTooLarge(Exception):
    pass


def create_app(engine: UpscaleEngine, settings: ServerSettings) -> FastAPI:
    """The web application around a ready `engine`; its job queue starts and stops with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        work_dir = Path(tempfile.mkdtemp(prefix="srgan-serve-"))
        jobs = JobQueue(
            work_dir,
            engine.run,
            max_waiting=settings.queue_size,
            result_ttl_s=settings.result_ttl_s,
            max_kept_bytes=settings.max_kept_bytes,
            max_per_client=settings.max_jobs_per_client,
        )
        jobs.start()
        app.state.jobs = jobs
        try:
            yield
        finally:
            jobs.close()

    app = FastAPI(
        title="srgan",
        version=__version__,
        summary="Upscale images with GAN super-resolution models.",
        description=__doc__,
        lifespan=lifespan,
    )
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        refusal = _refuse_unknown_hosts_and_strangers(request, settings)
        response = refusal if refusal is not None else await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not request.url.path.startswith(("/docs", "/redoc")):
            # The page needs nothing beyond this server; /docs keeps FastAPI's own asset sources.
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'"
            )
        return response

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        if settings.token is not None and "token" in request.query_params:
            # The token was checked already; keep it in a cookie the page's requests carry, off the URL bar.
            moved = RedirectResponse("/", status_code=303)
            moved.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
            return moved
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/models", summary="Models a request may use")
    async def list_models() -> dict:
        return {
            "default": engine.default_model,
            "models": engine.describe_models(),
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "max_outscale": MAX_OUTSCALE,
        }

    @app.post(
        "/api/upscale",
        status_code=202,
        summary="Queue an image for upscaling",
        description=(
            "Send `multipart/form-data` with the image file in the field `image`; optional fields `model` "
            "(a name from /api/models; default: the server's model) and `outscale` (1 to 8; default: the "
            "model's native scale). Answers 202 with the job; poll `GET /api/jobs/{id}` until `status` "
            "is `done`, then fetch `GET /api/jobs/{id}/result`. 503 with `Retry-After` when the queue is "
            "full, 429 with `Retry-After` when this client already has its most jobs waiting or running; 413 for too many bytes or pixels; 415 when the file is not an image; 422 when it is "
            "truncated or a field is invalid."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "format": "binary"},
                                "model": {"type": "string"},
                                "outscale": {"type": "number", "minimum": 1, "maximum": MAX_OUTSCALE},
                            },
                        }
                    }
                },
            }
        },
        responses={
            403: {"description": "Posted by a page of another site"},
            413: {"description": "Upload or image too large"},
            415: {"description": "Not an image"},
            422: {"description": "Truncated image or invalid field"},
            429: {"description": "This client already has its most jobs waiting or running; see Retry-After"},
            503: {"description": "Queue full; see Retry-After"},
        },
    )
    async def upscale(request: Request) -> JSONResponse:
        _refuse_other_sites(request)
        jobs: JobQueue = request.app.state.jobs
        if jobs.is_full():
            # Refuse before reading the body; `submit` re-checks under its lock.
            raise _queue_full(QueueFullError(jobs.estimate_wait_s()))
        form = await _read_form(request, settings.max_upload_bytes)
        try:
            model, outscale = _parse_options(engine, form.get("model"), form.get("outscale"))
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, "field 'image' is missing: send the image file in the form field 'image'")
            if upload.size is not None and upload.size > settings.max_upload_bytes:
                raise _upload_too_large(settings.max_upload_bytes)
            job_id, folder = jobs.new_job_folder()
            try:
                image = await run_in_threadpool(_store_and_decode, upload, folder / _UPLOAD_NAME, settings.max_pixels)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        finally:
            await form.close()
        job = Job(
            id=job_id,
            model=model,
            outscale=outscale,
            input_size=(image.width, image.height),
            payload=image,
            folder=folder,
            client=request.client.host if request.client else "",
            stem=_download_stem(upload.filename),
        )
        try:
            jobs.submit(job)
        except QueueFullError as full:
            raise _queue_full(full) from None
        return JSONResponse(_job_json(jobs, job), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs/{job_id}", summary="Status, progress and queue position of a job")
    async def job_status(job_id: uuid.UUID, request: Request) -> dict:
        jobs: JobQueue = request.app.state.jobs
        return _job_json(jobs, _find_job(jobs, job_id))

    @app.get(
        "/api/jobs/{job_id}/result",
        summary="The upscaled image (PNG)",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, 409: {"description": "Job not done (yet)"}},
    )
    async def job_result(job_id: uuid.UUID, request: Request) -> FileResponse:
        job = _find_job(request.app.state.jobs, job_id)
        if job.status is JobStatus.FAILED:
            raise HTTPException(409, f"job {job.id} failed: {job.error}")
        if job.status is not JobStatus.DONE or not job.result_path.is_file():
            raise HTTPException(409, f"job {job.id} is {job.status.value}; poll /api/jobs/{job.id} until it is done")
        return FileResponse(
            job.result_path,
            media_type="image/png",
            filename=f"{job.stem}{default_suffix(job.model, f'{job.outscale:g}')}.png",
            content_disposition_type="inline",
        )

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("path", "query", "body"))
        message = first.get("msg", "invalid request")
        if where == "job_id":
            message = "job ids are UUIDs as returned by POST /api/upscale"
        return JSONResponse({"error": f"{where or 'request'}: {message}"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error; the server log has the details"}, status_code=500)


def _refuse_unknown_hosts_and_strangers(request: Request, settings: ServerSettings) -> JSONResponse | None:
    """The Host check, then the token check; the refusal to send, or None when the request may go on.

    A page on another site can point its own domain name at this server's address (DNS rebinding) and
    then read answers as if same-origin; its requests still carry that domain in `Host`, so only the
    names this server goes by are served. This comes before the Origin check, which trusts `Host`.
    """
    host = _host_name(request.headers.get("host", ""))
    if host not in settings.allowed_hosts and not (settings.any_ip_host and _is_ip_address(host)):
        shown = request.headers.get("host", "(none)")
        allowed = ", ".join(sorted(settings.allowed_hosts))
        return JSONResponse(
            {"error": f"Host {shown!r} is not a name of this server (it answers to {allowed}); "
                      "start it with --allow-host NAME for another name"},
            status_code=403,
        )
    if settings.token is None:
        return None
    authorization = request.headers.get("authorization", "")
    presented = [
        authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None,
        request.cookies.get(TOKEN_COOKIE),
        request.query_params.get("token"),
    ]
    if any(value is not None and hmac.compare_digest(value.encode(), settings.token.encode()) for value in presented):
        return None
    return JSONResponse(
        {"error": "this server needs its access token: send 'Authorization: Bearer TOKEN', or open /?token=TOKEN "
                  "in the browser (the token is printed when the server starts)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _host_name(host_header: str) -> str | None:
    """The name in a `Host` header, lower case and without the port ('[::1]:8000' -> '::1')."""
    try:
        return urlsplit(f"//{host_header}").hostname
    except ValueError:  # an unbalanced '[' and the like
        return None


def _is_ip_address(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def _refuse_other_sites(request: Request) -> None:
    """A page on another site may not make a visitor's browser queue work on this local server.

    Browsers send `Origin` with cross-site form posts, which need no CORS permission; clients
    such as curl send none and are unaffected.
    """
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"requests from the web page at {origin} are refused; use this server's own page")


async def _read_form(request: Request, max_upload_bytes: int):
    """Parse the multipart body, counting bytes as they arrive so an oversized upload stops early."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(415, "send the image as multipart/form-data with the file in the field 'image'")
    body_limit = max_upload_bytes + _FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_limit:
        raise _upload_too_large(max_upload_bytes)

    async def limited_stream() -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise _UploadTooLarge
            yield chunk

    parser = MultiPartParser(request.headers, limited_stream(), max_files=1, max_fields=4, max_part_size=1024)
    try:
        return await parser.parse()
    except _UploadTooLarge:
        raise _upload_too_large(max_upload_bytes) from None
    except MultiPartException as error:
        raise HTTPException(400, f"malformed multipart body: {error.message}") from None


def _parse_options(engine: UpscaleEngine, model_field, outscale_field) -> tuple[str, float | None]:
    """The requested model name and outscale (None: the model's own scale), validated."""
    model = model_field if isinstance(model_field, str) and model_field else engine.default_model
    if model not in engine.model_names():
        names = ", ".join(engine.model_names())
        raise HTTPException(422, f"model {model!r} is not available on this server; choose one of: {names}")
    if not isinstance(outscale_field, str) or not outscale_field.strip():
        return model, None
    try:
        outscale = float(outscale_field)
    except ValueError:
        raise HTTPException(422, f"outscale {outscale_field!r} is not a number; use e.g. 2 or 4") from None
    if not (math.isfinite(outscale) and 1.0 <= outscale <= MAX_OUTSCALE):
        raise HTTPException(422, f"outscale {outscale_field} is out of range; use 1 to {MAX_OUTSCALE:g}")
    return model, outscale


def _store_and_decode(upload: UploadFile, path: Path, max_pixels: int):
    """Write the upload into the job's folder, check its header, then decode it fully (and drop the file).

    The content alone decides whether this is an image: the file name and the declared content
    type are ignored.
    """
    with path.open("wb") as stored:
        shutil.copyfileobj(upload.file, stored)
    try:
        _check_header(path, max_pixels)
        return read_image(path, max_pixels=max_pixels)
    except SrganError as error:
        raise HTTPException(422, str(error).replace(str(path), _CLIENT_IMAGE_NAME)) from None
    finally:
        path.unlink()


def _download_stem(filename: str | None) -> str:
    """The stem of the upload's file name, to name its result like `srgan upscale` does.

    Only a name to suggest to the browser (the stored file is always `_UPLOAD_NAME`): any folder part,
    control character and character a file name cannot hold on Windows is dropped.
    """
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = _UNSAFE_NAME_CHARACTERS.sub("", Path(name).stem).strip(" .")[:_MAX_STEM_CHARACTERS]
    return stem or "image"


def _check_header(path: Path, max_pixels: int) -> None:
    """Refuse non-images (415) and images with too many pixels (413) from the header alone."""
    if path.stat().st_size == 0:
        raise HTTPException(422, "the uploaded file is empty")
    # Pillow's own decompression-bomb guard is irrelevant here: our pixel limit is checked first.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as header:
                width, height = header.size
        except UnidentifiedImageError:
            raise HTTPException(
                415, "the uploaded file is not an image Pillow can read (PNG, JPEG, WebP, TIFF...)"
            ) from None
        except Image.DecompressionBombError:
            raise _too_many_pixels(None, max_pixels) from None
        except OSError as error:
            raise HTTPException(422, f"the uploaded image cannot be read: {error}") from None
    if width * height > max_pixels:
        raise _too_many_pixels((width, height), max_pixels)


def _find_job(jobs: JobQueue, job_id: uuid.UUID) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(
            404, f"job {job_id} not found (unknown id, or its result expired or was deleted to keep the server's "
            "results under its storage cap)"
        )
    return job


def _job_json(jobs: JobQueue, job: Job) -> dict:
    done = job.status is JobStatus.DONE
    return {
        "id": str(job.id),
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "queue_position": jobs.queue_position(job),
        "model": job.model,
        "outscale": job.outscale,
        "input_size": list(job.input_size),
        "output_size": list(job.output_size) if job.output_size else None,
        "error": job.error,
        "result_url": f"/api/jobs/{job.id}/result" if done else None,
    }


def _upload_too_large(max_upload_bytes: int) -> HTTPException:
    return HTTPException(413, f"upload too large: this server accepts images up to {_megabytes(max_upload_bytes)}")


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> HTTPException:
    found = f" ({size[0]}x{size[1]} = {size[0] * size[1]:,})" if size else ""
    return HTTPException(413, f"image has too many pixels{found}; this server accepts up to {max_pixels:,}")


def _queue_full(full: QueueFullError) -> HTTPException:
    status = 429 if isinstance(full, ClientLimitError) else 503
    return HTTPException(status, str(full), headers={"Retry-After": str(full.retry_after_s)})


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):g} MB"
