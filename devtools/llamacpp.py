"""A real llama.cpp server for tests and benchmarks: llama.cpp's own C++ `llama-server`.

The server is compiled from the llama.cpp sources vendored in the PyPI sdist of
`llama-cpp-python` (pinned below, hash-checked), with cmake and the system C/C++ compiler,
CPU only and statically linked. Everything lives in a cache directory, never in the repository:

    ${FATHOM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/fathom}/llamacpp/<version>/
        llama_cpp_python-<version>.tar.gz   the sdist, as pip downloaded it
        bin/llama-server                    the finished binary
        build.json                          marker: written last, so its presence means "done"
        build.log                           cmake's output of the last build
        .lock                               fcntl lock: one build at a time across processes

The source tree and cmake's build tree are deleted after a successful build (about 400 MB);
the sdist is kept so that a rebuild does not download it again.

    ensure_llama_server() -> Path      builds once, then returns the cached binary at once
    cached_llama_server() -> Path|None the binary if already built (never builds)
    llama_server(model, ...)           context manager: a started server's base URL

Pre-build from a shell (bin/setup, CI):  python -m devtools.llamacpp build
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

# The newest llama-cpp-python on PyPI when this was written. Its sdist vendors llama.cpp at
# commit 0c1e570 (ggml 0.25.3), whose tools/server builds the `llama-server` target.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_CPP_COMMIT = "0c1e570"
"""The llama.cpp commit that sdist vendors (its CHANGELOG: ggml-org/llama.cpp@0c1e57098)."""
LLAMA_CPP_RELEASE = "b11312"
"""llama.cpp's release tag of that commit, which names its official images
(ghcr.io/ggml-org/llama.cpp:server-b11312, docker-compose.yml). The sdist's history is shallow,
so the binary built here reports itself as "b1-0c1e570"."""

# CPU only, one static binary, nothing fetched from the network at build time (the web UI is
# left out: by default its assets are downloaded from a Hugging Face bucket), no tests or
# examples. GGML_NATIVE=OFF keeps the binary portable across the x86 machines a cache may be
# restored on (ggml still picks its AVX2/FMA variant); the test model is tiny, so speed is moot.
CMAKE_OPTIONS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
CMAKE_TARGET = "llama-server"
MIN_CMAKE = (3, 14)

MARKER = "build.json"


class LlamaCppError(RuntimeError):
    """The llama.cpp server could not be built or started; the message says why."""


def cache_root() -> Path:
    """Fathom's cache directory: $FATHOM_CACHE_DIR, else $XDG_CACHE_HOME/fathom, else
    ~/.cache/fathom."""
    explicit = os.environ.get("FATHOM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fathom"


def version_dir(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    return cache_root() / "llamacpp" / version


def _build_config(version: str) -> dict[str, object]:
    """What a cached build must match to be reused."""
    return {
        "llama_cpp_python": version,
        "sdist_sha256": SDIST_SHA256,
        "cmake_options": list(CMAKE_OPTIONS),
        "target": CMAKE_TARGET,
    }


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on `path`, held for the block (waits for other holders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _cached_binary(directory: Path, version: str) -> Path | None:
    marker = directory / MARKER
    binary = directory / "bin" / CMAKE_TARGET
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("config") != _build_config(version):
        return None
    if not os.access(binary, os.X_OK):
        return None
    return binary


def cached_llama_server(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """The finished binary in the cache, or None if it has not been built (no waiting, no
    building)."""
    return _cached_binary(version_dir(version), version)


def check_build_tools() -> None:
    """Raise LlamaCppError naming what to install when cmake, make or a C/C++ compiler is
    missing (nothing is installed here: that is the user's call)."""
    missing: list[str] = []
    cmake = shutil.which("cmake")
    if cmake is None:
        missing.append(f"cmake >= {'.'.join(map(str, MIN_CMAKE))}")
    else:
        out = subprocess.run([cmake, "--version"], capture_output=True, text=True).stdout
        words = out.split()
        try:
            found = tuple(int(part) for part in words[2].split(".")[:2])
        except (IndexError, ValueError):
            found = (0, 0)
        if found < MIN_CMAKE:
            missing.append(f"cmake >= {'.'.join(map(str, MIN_CMAKE))} (found: {out.strip()})")
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        missing.append("a C compiler (gcc or clang)")
    if not any(shutil.which(cxx) for cxx in ("c++", "g++", "clang++")):
        missing.append("a C++17 compiler (g++ or clang++)")
    if not any(shutil.which(tool) for tool in ("make", "gmake", "ninja")):
        missing.append("make (or ninja)")
    if missing:
        raise LlamaCppError(
            "building llama.cpp's llama-server needs: "
            + ", ".join(missing)
            + ". Install them and run again, e.g. Debian/Ubuntu: "
            "`sudo apt-get install cmake g++ make`; Fedora: `sudo dnf install cmake gcc-c++ make`; "
            "macOS: `xcode-select --install && brew install cmake`."
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_sdist(directory: Path, version: str, log: Path) -> Path:
    """The llama-cpp-python sdist, downloaded with pip (hash-checked) unless already here."""
    name = f"llama_cpp_python-{version}.tar.gz"
    sdist = directory / name
    if sdist.exists() and _sha256(sdist) == SDIST_SHA256:
        return sdist
    sdist.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"llama-cpp-python=={version} --hash=sha256:{SDIST_SHA256}\n")
        command = [
            sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
            "--require-hashes", "--disable-pip-version-check", "-r", str(requirements),
            "-d", tmp,
        ]  # fmt: skip
        _run_logged(command, log, what="pip download of the llama-cpp-python sdist")
        downloaded = Path(tmp) / name
        if not downloaded.exists() or _sha256(downloaded) != SDIST_SHA256:
            raise LlamaCppError(f"pip did not produce {name} with sha256 {SDIST_SHA256}")
        downloaded.replace(sdist)
    return sdist


def _extract(sdist: Path, destination: Path) -> Path:
    """Unpack the sdist; return its vendored llama.cpp source directory."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(destination, filter="data")
    tops = [p for p in destination.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise LlamaCppError(f"unexpected layout in {sdist.name}: {[p.name for p in tops]}")
    source = tops[0] / "vendor" / "llama.cpp"
    if not (source / "tools" / "server" / "CMakeLists.txt").exists():
        raise LlamaCppError(f"{sdist.name} does not vendor llama.cpp's tools/server")
    return source


def _run_logged(command: Sequence[str], log: Path, *, what: str) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise LlamaCppError(f"{what} failed (exit {result.returncode}); log: {log}\n{tail}")


def _default_jobs() -> int:
    configured = os.environ.get("FATHOM_LLAMACPP_JOBS")
    if configured:
        return max(1, int(configured))
    return max(1, os.cpu_count() or 2)


def ensure_llama_server(
    version: str = LLAMA_CPP_PYTHON_VERSION, *, jobs: int | None = None, quiet: bool = True
) -> Path:
    """Path to a built `llama-server`, building it first if the cache has none.

    A first build downloads the sdist (~75 MB) and compiles for many minutes on few cores;
    later calls return at once. Concurrent callers (pytest-xdist, two test runs) wait on one
    lock and reuse the single build. Set FATHOM_LLAMACPP_JOBS to bound the compile jobs
    (default: the number of CPUs)."""
    directory = version_dir(version)
    cached = _cached_binary(directory, version)
    if cached is not None:
        return cached
    with _file_lock(directory / ".lock"):
        cached = _cached_binary(directory, version)  # built while we waited
        if cached is not None:
            return cached
        return _build(directory, version, jobs or _default_jobs(), quiet=quiet)


def _build(directory: Path, version: str, jobs: int, *, quiet: bool) -> Path:
    check_build_tools()
    (directory / MARKER).unlink(missing_ok=True)
    log = directory / "build.log"
    log.write_text(f"building llama-server from llama-cpp-python {version}, {jobs} jobs\n")
    started = time.monotonic()

    def say(message: str) -> None:
        if not quiet:
            print(f"[llamacpp] {message}", file=sys.stderr, flush=True)

    say(f"building llama-server from llama-cpp-python {version} in {directory} (log: {log})")
    sdist = _download_sdist(directory, version, log)
    source = _extract(sdist, directory / "src")
    build_dir = directory / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    say(f"configuring ({time.monotonic() - started:.0f} s)")
    configure = ["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_OPTIONS]
    _run_logged(configure, log, what="cmake configure")
    say(f"compiling with {jobs} jobs ({time.monotonic() - started:.0f} s)")
    compile_ = ["cmake", "--build", str(build_dir), "--target", CMAKE_TARGET, "-j", str(jobs)]
    _run_logged(compile_, log, what="cmake build")
    built = build_dir / "bin" / CMAKE_TARGET
    if not built.exists():
        raise LlamaCppError(f"cmake finished but {built} is missing; log: {log}")
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    staged = bin_dir / f".{CMAKE_TARGET}.tmp"
    shutil.copy2(built, staged)
    staged.replace(bin_dir / CMAKE_TARGET)
    shutil.rmtree(build_dir)
    shutil.rmtree(directory / "src")
    seconds = time.monotonic() - started
    marker = {
        "config": _build_config(version),
        "build_seconds": round(seconds, 1),
        "jobs": jobs,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    staged_marker = directory / f".{MARKER}.tmp"
    staged_marker.write_text(json.dumps(marker, indent=2) + "\n")
    staged_marker.replace(directory / MARKER)
    say(f"built in {seconds:.0f} s")
    return bin_dir / CMAKE_TARGET


# --- running a server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the process that started us dies,
    so a killed test run leaves no server behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _server_env() -> dict[str, str]:
    # llama-server reads LLAMA_ARG_* variables as options: a developer's shell must not
    # change what the tests run.
    return {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}


def _health(url: str, timeout: float) -> int | None:
    """The status of GET /health, None when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the server's process group, SIGKILL it after `grace_s`; reap it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def llama_server(
    model: Path,
    *,
    ctx_size: int = 2048,
    parallel: int = 1,
    threads: int = 2,
    reasoning_format: str | None = "none",
    extra_args: Sequence[str] = (),
    binary: Path | None = None,
    log_path: Path | None = None,
    startup_timeout_s: float = 120.0,
    stop_grace_s: float = 10.0,
) -> Iterator[str]:
    """Start `llama-server` with the GGUF `model` on a free loopback port; yield its base URL
    (http://127.0.0.1:PORT, no trailing slash) once GET /health answers 200; stop it on exit,
    whatever happened in the block.

    `ctx_size` is the whole KV cache (-c), shared by the `parallel` slots (-np): each slot gets
    ctx_size / parallel tokens. `reasoning_format="none"` leaves `<think>`...`</think>` in the
    streamed `content` as TGI does (llama-server's default, "auto", moves them to
    `reasoning_content`); pass None to keep the server's default. `extra_args` are appended
    as given. The server's output goes to `log_path` (kept), else to a temporary file whose
    tail is quoted if the server fails to start.

    On Linux the server is also sent SIGTERM when the thread that started it ends (prctl
    PDEATHSIG), so a test run killed outright leaves no server behind: enter this from a
    thread that outlives the server (the main thread, as pytest fixtures do)."""
    binary = binary or ensure_llama_server()
    if not model.is_file():
        raise LlamaCppError(f"no GGUF model at {model}")
    with contextlib.ExitStack() as stack:
        if log_path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="llama-server-"))
            log_path = Path(tmp) / "server.log"
        for attempt in range(3):
            port = _free_port()
            command = [
                str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
                "--ctx-size", str(ctx_size), "--parallel", str(parallel),
                "--threads", str(threads),
                "--no-webui", "--no-warmup",
            ]  # fmt: skip
            if reasoning_format is not None:
                command += ["--reasoning-format", reasoning_format]
            command += list(extra_args)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_server_env(),
                    start_new_session=True,  # its own process group: stopped as a whole
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            stack.callback(_stop, process, stop_grace_s)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + startup_timeout_s
            while True:
                status = _health(url, timeout=2.0)
                if status == 200:
                    yield url
                    return
                if process.poll() is not None:
                    log_text = _tail(log_path)
                    if "couldn't bind" in log_text and attempt < 2:
                        break  # another process took the port between our probe and its bind
                    raise LlamaCppError(
                        f"llama-server exited with {process.returncode} before it was ready:"
                        f"\n$ {' '.join(command)}\n{log_text}"
                    )
                if time.monotonic() > deadline:
                    raise LlamaCppError(
                        f"llama-server not ready after {startup_timeout_s:.0f} s "
                        f"(last /health: {status}):\n{_tail(log_path)}"
                    )
                time.sleep(0.05)
        raise LlamaCppError("llama-server could not bind a free port in 3 tries")


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.llamacpp", description="Build and cache llama.cpp's llama-server."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build llama-server unless cached; print its path")
    build.add_argument("--jobs", "-j", type=int, default=None, help="parallel compile jobs")
    commands.add_parser("path", help="print the cached binary's path (exit 1 if not built)")
    args = parser.parse_args(argv)
    if args.command == "path":
        cached = cached_llama_server()
        if cached is None:
            print(f"not built (cache: {version_dir()})", file=sys.stderr)
            return 1
        print(cached)
        return 0
    started = time.monotonic()
    try:
        binary = ensure_llama_server(jobs=args.jobs, quiet=False)
    except LlamaCppError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(binary)
    print(f"[llamacpp] llama-server ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
