"""`srgan serve`: the real server process on 127.0.0.1, driven over HTTP, plus its job queue in-process."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

httpx = pytest.importorskip("httpx", reason='the serve tests need httpx: pip install "srgan[test]"')
pytest.importorskip("fastapi", reason='srgan serve needs its extra: pip install "srgan[serve]"')

from srgan.cli import main
from srgan.errors import SrganError
from srgan.resize import matlab_bicubic_resize
from srgan.serve.app import ServerSettings, create_app
from srgan.serve.jobs import Job, JobQueue, JobStatus, QueueFullError

# Limits of the test server: small enough that the refusal tests stay tiny.
MAX_UPLOAD_MB = 1
MAX_PIXELS = 20_000
QUEUE_SIZE = 3
SERVER_START_TIMEOUT_S = 90.0
JOB_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(log_path: Path, *options: str) -> Iterator[str]:
    """Run `python -m srgan serve` on a free local port until the block ends; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "srgan", "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{base_url}/api/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"server not ready after {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    options = ["--model", "bicubic", "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS)]
    with running_server(log_path, *options, "--queue-size", str(QUEUE_SIZE)) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def post_image(http: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return http.post("/api/upscale", files={"image": ("photo.png", data, "image/png")}, data=fields)


def wait_for_job(http: httpx.Client, job: dict) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job did not finish in {JOB_TIMEOUT_S} s: {job}"
        time.sleep(0.05)
        response = http.get(f"/api/jobs/{job['id']}")
        assert response.status_code == 200, response.text
        job = response.json()
    return job


def upscale_via_api(http: httpx.Client, data: bytes, **fields: str) -> tuple[dict, bytes]:
    response = post_image(http, data, **fields)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/jobs/{response.json()['id']}"
    job = wait_for_job(http, response.json())
    assert job["status"] == "done", job
    result = http.get(job["result_url"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/png"
    return job, result.content


def assert_json_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert message and "Traceback" not in message
    return message


def test_models_lists_the_server_model_as_default(client):
    catalog = client.get("/api/models").json()
    assert catalog["default"] == "bicubic"
    bicubic = next(model for model in catalog["models"] if model["name"] == "bicubic")
    assert bicubic["scale"] == 4
    assert all(model["scale"] for model in catalog["models"]), "known before a model is loaded"
    assert catalog["max_pixels"] == MAX_PIXELS


def test_openapi_documents_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/upscale", "/api/models", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result"} <= set(paths)
    assert "multipart/form-data" in paths["/api/upscale"]["post"]["requestBody"]["content"]


def test_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_upscale_png_end_to_end_matches_bicubic(client):
    source = png_bytes(24, 16)
    job, result = upscale_via_api(client, source)
    assert job["outscale"] == 4 and job["progress"] == 1.0
    assert job["input_size"] == [24, 16] and job["output_size"] == [96, 64]

    upscaled = np.asarray(Image.open(io.BytesIO(result)))
    assert upscaled.shape == (64, 96, 3)
    pixels = torch.from_numpy(np.array(Image.open(io.BytesIO(source)))).permute(2, 0, 1).float() / 255
    expected = matlab_bicubic_resize(pixels, scale=4).clamp(0, 1).permute(1, 2, 0).numpy() * 255
    assert np.abs(upscaled.astype(np.float64) - expected).max() <= 1.0


def test_outscale_sets_the_output_size_and_upload_names_are_ignored(client):
    response = client.post(
        "/api/upscale", files={"image": ("../../../evil.png", png_bytes(10, 7), "image/png")}, data={"outscale": "3"}
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json())
    assert job["output_size"] == [30, 21]
    result = client.get(job["result_url"])
    assert Image.open(io.BytesIO(result.content)).size == (30, 21)
    # the download keeps the upload's stem (not its folders), named like `srgan upscale` names outputs
    assert 'filename="evil_bicubic_x3.png"' in result.headers["content-disposition"]


@pytest.mark.parametrize(
    ("upload_name", "stem"),
    [
        ("holiday photo.JPG", "holiday photo"),
        ("C:\\Users\\me\\scan.tif", "scan"),
        ('a"b<c>|d?.png', "abcd"),
        ("línea\r\nSet-Cookie: x.png", "líneaSet-Cookie x"),
        ("....png", "image"),
        (None, "image"),
    ],
)
def test_download_stem_keeps_the_name_and_drops_what_no_file_name_may_hold(upload_name, stem):
    from srgan.serve.app import _download_stem

    assert _download_stem(upload_name) == stem


@pytest.mark.parametrize(("mode", "color"), [("L", 120), ("LA", (120, 200)), ("RGBA", (10, 20, 30, 128))])
def test_gray_and_alpha_are_kept(client, mode, color):
    buffer = io.BytesIO()
    Image.new(mode, (6, 5), color).save(buffer, format="PNG")
    _, result = upscale_via_api(client, buffer.getvalue())
    upscaled = Image.open(io.BytesIO(result))
    assert upscaled.mode == mode and upscaled.size == (24, 20)


def test_content_decides_what_is_an_image_not_the_name(client):
    message = assert_json_error(post_image(client, b"just some text, not pixels"), 415)
    assert "not an image" in message


def test_truncated_image_is_refused(client):
    whole = png_bytes(100, 100)
    message = assert_json_error(post_image(client, whole[: len(whole) // 2]), 422)
    assert "truncated" in message or "corrupt" in message
    assert "srgan-serve-" not in message  # the server's own paths stay private


def test_upload_over_the_byte_limit_is_refused(client):
    too_big = b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 100_000)
    assert "upload too large" in assert_json_error(post_image(client, too_big), 413)


def test_streamed_upload_is_counted_without_content_length(client):
    boundary = "srgan-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(MAX_UPLOAD_MB * 16 + 8):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/api/upscale", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert "content-length" not in response.request.headers
    assert_json_error(response, 413)


def test_too_many_pixels_is_refused_before_decoding(client):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), "gray").save(buffer, format="PNG")  # 40,000 pixels, a tiny file
    assert "too many pixels" in assert_json_error(post_image(client, buffer.getvalue()), 413)


def test_bad_fields_are_refused(client):
    source = png_bytes(8, 8)
    assert "not available" in assert_json_error(post_image(client, source, model="../../etc/passwd"), 422)
    assert_json_error(post_image(client, source, outscale="lots"), 422)
    assert_json_error(post_image(client, source, outscale="100"), 422)
    assert_json_error(client.post("/api/upscale", files={"picture": ("a.png", source, "image/png")}), 422)
    assert_json_error(client.post("/api/upscale", json={"image": "a.png"}), 415)


def test_posts_from_other_sites_are_refused(client, server):
    files = {"image": ("a.png", png_bytes(8, 8), "image/png")}
    foreign = client.post("/api/upscale", files=files, headers={"origin": "https://example.com"})
    assert "example.com" in assert_json_error(foreign, 403)
    assert client.post("/api/upscale", files=files, headers={"origin": server}).status_code == 202


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/not-a-uuid",
        "/api/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/%2e%2e/result",
        "/api/jobs/..%5C..%5Cwindows/result",
        f"/api/jobs/{uuid.uuid4()}",
        f"/api/jobs/{uuid.uuid4()}/result",
    ],
)
def test_job_ids_that_are_not_issued_uuids_find_nothing(client, path):
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert response.json()["error"]


def test_concurrent_requests_complete_or_get_503_and_server_stays_up(client):
    def one_request(index: int) -> str:
        response = post_image(client, png_bytes(12, 12, seed=index), outscale="2")
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            assert "busy" in response.json()["error"]
            return "busy"
        assert response.status_code == 202, response.text
        job = wait_for_job(client, response.json())
        assert job["status"] == "done", job
        assert Image.open(io.BytesIO(client.get(job["result_url"]).content)).size == (24, 24)
        return "done"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(one_request, range(20)))
    assert set(outcomes) <= {"done", "busy"}
    assert outcomes.count("done") >= 1
    assert client.get("/api/models").status_code == 200


def test_missing_serve_extra_is_one_clear_line(monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "uvicorn" else real_find_spec(name, *args)
    )
    assert main(["serve"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and 'pip install "srgan[serve]"' in error


def test_busy_port_is_one_clear_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1]), "--model", "bicubic"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "cannot listen on 127.0.0.1" in error and "--port" in error


# In-process: the job queue (ordering, positions, full-queue refusal, failures, expiry), then the app
# with a job held running so its states can be seen over HTTP deterministically.


def make_job(queue: JobQueue) -> Job:
    job_id, folder = queue.new_job_folder()
    return Job(id=job_id, model="bicubic", outscale=2.0, input_size=(4, 4), payload=None, folder=folder)


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_queue_runs_one_job_at_a_time_with_positions(tmp_path):
    release = threading.Event()

    def runner(job: Job, report_progress) -> tuple[int, int]:
        report_progress(0.5)
        release.wait(10)
        job.result_path.write_bytes(b"done")
        return (8, 8)

    queue = JobQueue(tmp_path / "work", runner, max_waiting=2, result_ttl_s=60)
    queue.start()
    try:
        first, second, third = (make_job(queue) for _ in range(3))
        queue.submit(first)
        wait_until(lambda: first.status is JobStatus.RUNNING and first.progress == 0.5)
        queue.submit(second)
        queue.submit(third)
        assert [queue.queue_position(job) for job in (first, second, third)] == [None, 1, 2]
        refused = make_job(queue)
        with pytest.raises(QueueFullError) as full:
            queue.submit(refused)
        assert full.value.retry_after_s >= 1 and not refused.folder.exists()
        release.set()
        wait_until(lambda: third.status is JobStatus.DONE)
        assert all(job.status is JobStatus.DONE and job.progress == 1.0 for job in (first, second, third))
        assert first.finished_at <= second.started_at
    finally:
        release.set()
        queue.close()
    assert not (tmp_path / "work").exists()


def test_failed_jobs_report_the_reason_and_results_expire(tmp_path):
    def runner(job: Job, report_progress) -> tuple[int, int]:
        if job.model == "broken":
            raise SrganError("broken: weights missing; reinstall")
        if job.model == "bug":
            raise RuntimeError("secret internal detail")
        job.result_path.write_bytes(b"done")
        return (8, 8)

    queue = JobQueue(tmp_path / "work", runner, max_waiting=4, result_ttl_s=0.2)
    queue.start()
    try:
        jobs = {name: make_job(queue) for name in ("broken", "bug", "good")}
        for name, job in jobs.items():
            job.model = name
            queue.submit(job)
        wait_until(lambda: all(job.finished_at for job in jobs.values()))
        assert (
            jobs["broken"].status is JobStatus.FAILED and jobs["broken"].error == "broken: weights missing; reinstall"
        )
        assert jobs["bug"].status is JobStatus.FAILED and "secret" not in jobs["bug"].error
        good = jobs["good"]
        assert queue.get(good.id) is good and good.result_path.is_file()
        time.sleep(0.3)
        assert queue.get(good.id) is None
        queue.submit(make_job(queue))  # submitting sweeps expired results off the disk
        assert not good.folder.exists()
    finally:
        queue.close()


class GatedEngine:
    """Stands in for UpscaleEngine so a job can be held running: each job waits for `release`."""

    default_model = "bicubic"

    def __init__(self):
        self.release = threading.Event()

    def model_names(self) -> list[str]:
        return [self.default_model]

    def describe_models(self) -> list[dict]:
        return [{"name": self.default_model, "description": "", "scale": 2}]

    def run(self, job: Job, report_progress) -> tuple[int, int]:
        report_progress(0.25)
        self.release.wait(10)
        job.outscale = job.outscale or 2.0
        Image.new("RGB", (16, 16)).save(job.result_path, format="PNG")
        return (16, 16)


@contextlib.contextmanager
def serving_in_thread(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a thread of this process; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_app_reports_progress_position_and_refuses_when_full():
    engine = GatedEngine()
    app = create_app(engine, ServerSettings(queue_size=1))
    with serving_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        try:
            running = post_image(http, png_bytes(8, 8)).json()
            wait_until(lambda: http.get(f"/api/jobs/{running['id']}").json()["status"] == "running")
            assert http.get(f"/api/jobs/{running['id']}").json()["progress"] == 0.25
            assert "running" in assert_json_error(http.get(f"/api/jobs/{running['id']}/result"), 409)

            waiting = post_image(http, png_bytes(8, 8))
            assert waiting.status_code == 202 and waiting.json()["queue_position"] == 1
            refused = post_image(http, png_bytes(8, 8))
            assert_json_error(refused, 503)
            assert int(refused.headers["retry-after"]) >= 1
        finally:
            engine.release.set()
        for job in (running, waiting.json()):
            assert wait_for_job(http, job)["status"] == "done"
            assert http.get(f"/api/jobs/{job['id']}/result").status_code == 200


def test_retry_after_is_spread_so_refused_clients_do_not_retry_together(tmp_path):
    queue = JobQueue(tmp_path / "work", lambda job, report: (1, 1), max_waiting=1, result_ttl_s=60)
    waits = [queue.estimate_wait_s() for _ in range(200)]
    # no finished job yet: the 5 s guess gives a 10 s base, spread over 10..22 s
    assert min(waits) >= 10 and max(waits) <= 22 and len(set(waits)) > 5


def test_only_the_servers_own_host_names_are_served_checked_before_origin():
    engine = GatedEngine()
    engine.release.set()
    settings = ServerSettings(allowed_hosts=frozenset({"127.0.0.1", "localhost", "::1", "box.lan"}))
    app = create_app(engine, settings)
    with serving_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        # DNS rebinding: evil.example resolves to this server; Host and Origin agree, so only Host tells
        rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000"}
        refused = http.post("/api/upscale", files={"image": ("a.png", png_bytes(8, 8), "image/png")}, headers=rebound)
        assert "evil.example" in assert_json_error(refused, 403) and "--allow-host" in refused.json()["error"]
        assert http.get("/api/models", headers={"host": "evil.example:8000"}).status_code == 403
        assert http.get("/", headers={"host": "evil.example"}).status_code == 403
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "BOX.lan:8000"):
            assert http.get("/api/models", headers={"host": host}).status_code == 200, host
        assert http.get("/api/models", headers={"host": "192.168.1.5:8000"}).status_code == 403
        own = {"host": "box.lan:8000", "origin": "http://box.lan:8000"}
        accepted = http.post("/api/upscale", files={"image": ("a.png", png_bytes(8, 8), "image/png")}, headers=own)
        assert accepted.status_code == 202, accepted.text


def test_a_server_with_a_token_refuses_requests_without_it():
    engine = GatedEngine()
    engine.release.set()
    app = create_app(engine, ServerSettings(token="s3cret"))
    with serving_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        for path in ("/", "/api/models", "/static/app.js", "/openapi.json"):
            assert "access token" in assert_json_error(http.get(path), 401)
        assert http.get("/api/models", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/api/models", headers={"authorization": "Bearer s3cret"}).status_code == 200
        opened = http.get("/?token=s3cret", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"]
        assert cookie.startswith("srgan_token=s3cret") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        http.cookies.clear()
        page = http.get("/", headers={"cookie": "srgan_token=s3cret"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_serve_allows_the_bound_address_and_given_names_and_needs_a_token_beyond_loopback(monkeypatch, capsys):
    import uvicorn

    from srgan.cli.serve import allowed_hosts

    assert allowed_hosts("0.0.0.0", []) == {"127.0.0.1", "localhost", "::1", socket.gethostname().lower(),
                                            socket.getfqdn().lower()}
    assert allowed_hosts("192.168.1.5", ["Box.LAN", "[fe80::1]"]) == {
        "127.0.0.1", "localhost", "::1", "192.168.1.5", "box.lan", "fe80::1"
    }
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    monkeypatch.setattr("srgan.cli.serve._check_can_listen", lambda host, port: None)
    assert main(["serve", "--host", "0.0.0.0", "--model", "bicubic", "--allow-host", "box.lan"]) == 0
    err = capsys.readouterr().err
    token = err.split("access token (random; choose one with --token or $SRGAN_SERVE_TOKEN): ")[1].split()[0]
    assert len(token) >= 24 and f"/?token={token}" in err and "box.lan" in err
    with serving_in_thread(started["app"]) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        bearer = {"authorization": f"Bearer {token}"}
        for host, status in (("192.168.1.5:8000", 200), ("[fe80::1]", 200), ("box.lan", 200), ("evil.example", 403)):
            assert http.get("/api/models", headers={"host": host, **bearer}).status_code == status, host
    monkeypatch.setenv("SRGAN_SERVE_TOKEN", "from-env")
    assert main(["serve", "--model", "bicubic"]) == 0
    assert "access token" not in capsys.readouterr().err
    # the environment's token is used on loopback too, and never printed
    with serving_in_thread(started["app"]) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.get("/api/models").status_code == 401
        assert http.get("/api/models", headers={"host": "192.168.1.5"}).status_code == 403  # bound to loopback
        assert http.get("/api/models", headers={"authorization": "Bearer from-env"}).status_code == 200


def test_results_kept_stay_under_the_byte_cap_oldest_deleted_first(tmp_path):
    def runner(job: Job, report_progress) -> tuple[int, int]:
        job.result_path.write_bytes(bytes(1000))
        return (8, 8)

    queue = JobQueue(tmp_path / "work", runner, max_waiting=8, result_ttl_s=60, max_kept_bytes=2500)
    queue.start()
    try:
        jobs = [make_job(queue) for _ in range(5)]
        for job in jobs:
            queue.submit(job)
        wait_until(lambda: all(job.finished_at for job in jobs))
        kept = [job for job in jobs if queue.get(job.id) is not None]
        assert kept == jobs[-2:]
        assert sum(path.stat().st_size for path in (tmp_path / "work").rglob("*") if path.is_file()) == 2000
        assert not any(job.folder.exists() for job in jobs[:-2])
    finally:
        queue.close()
    lonely = JobQueue(tmp_path / "w2", runner, max_waiting=1, result_ttl_s=60, max_kept_bytes=10)
    lonely.start()
    try:
        job = make_job(lonely)
        lonely.submit(job)
        wait_until(lambda: job.finished_at is not None)
        assert lonely.get(job.id) is job and job.result_path.is_file()  # the newest result is always kept
    finally:
        lonely.close()


def test_one_client_may_not_fill_the_queue_alone(tmp_path):
    from srgan.serve.jobs import ClientLimitError

    release = threading.Event()

    def runner(job: Job, report_progress) -> tuple[int, int]:
        release.wait(10)
        job.result_path.write_bytes(b"done")
        return (8, 8)

    queue = JobQueue(tmp_path / "work", runner, max_waiting=8, result_ttl_s=60, max_per_client=2)
    queue.start()
    try:
        made = []

        def job_of(client: str) -> Job:
            job = make_job(queue)
            job.client = client
            made.append(job)
            return job

        queue.submit(job_of("10.0.0.1"))
        queue.submit(job_of("10.0.0.1"))
        refused = job_of("10.0.0.1")
        with pytest.raises(ClientLimitError, match="you already have 2 job"):
            queue.submit(refused)
        assert not refused.folder.exists()
        queue.submit(job_of("10.0.0.2"))  # another client is not held back
        release.set()
        wait_until(lambda: all(job.status is JobStatus.DONE for job in made if job is not refused))
        queue.submit(job_of("10.0.0.1"))  # finished jobs no longer count
    finally:
        release.set()
        queue.close()


def test_the_app_answers_429_to_a_client_over_its_limit():
    engine = GatedEngine()
    app = create_app(engine, ServerSettings(max_jobs_per_client=1))
    with serving_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        try:
            assert post_image(http, png_bytes(8, 8)).status_code == 202
            refused = post_image(http, png_bytes(8, 8))
            assert "you already have 1 job" in assert_json_error(refused, 429)
            assert int(refused.headers["retry-after"]) >= 1
        finally:
            engine.release.set()
