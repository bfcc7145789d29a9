"""Step images without an engine: the names and the images mapping (components/images.py),
the Dockerfiles, cloudbuild.yaml and the build script's refusals. What the built images
hold is checked by tests/images (``make test-images``, a real Docker engine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from components.images import (
    DATAFLOW_WORKER,
    DEFAULT_PLATFORM,
    DEFAULT_REGISTRY,
    PLATFORM_KEY,
    STEPS,
    ImagesError,
    image_refs,
    is_pinned,
    load_images,
    load_platform,
    validate_images,
    write_images,
)

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
EXTRA_OF_STEP = {"ingest": None, "transform": "beam", "tune": "ml", "train": "ml", "deploy": "ml"}


def _stages(dockerfile: Path) -> dict[str, list[str]]:
    """``{stage name: its instructions}`` (continuation lines joined; comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: dict[str, list[str]] = {}
    current = "<preamble>"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = match[1] or f"<stage {len(stages)}>"
            stages[current] = []
        stages.setdefault(current, []).append(line)
    return stages


# --- components/images.py ---------------------------------------------------------------


def test_image_refs_name_every_step_and_the_worker():
    refs = image_refs("europe-west1-docker.pkg.dev/p/repo/", "abc123")
    assert list(refs) == [*STEPS, DATAFLOW_WORKER]
    assert refs["train"] == "europe-west1-docker.pkg.dev/p/repo/train:abc123"
    assert refs[DATAFLOW_WORKER] == "europe-west1-docker.pkg.dev/p/repo/transform-worker:abc123"
    assert image_refs()["ingest"] == f"{DEFAULT_REGISTRY}/ingest:dev"


@pytest.mark.parametrize(("registry", "tag"), [("", "t"), ("r", " "), ("/", "t")])
def test_image_refs_need_a_registry_and_a_tag(registry, tag):
    with pytest.raises(ImagesError, match="non-empty"):
        image_refs(registry, tag)


def test_is_pinned_only_for_a_full_sha256_digest():
    assert is_pinned(f"r.example/p/train@{DIGEST}")
    assert not is_pinned("r.example/p/train:abc123")
    assert not is_pinned("r.example/p/train@sha256:abc")
    assert not is_pinned(f"r.example/p/train@{DIGEST}x")


def test_validate_images_orders_and_rejects():
    mapping = {step: f"r/{step}@{DIGEST}" for step in reversed(STEPS)}
    assert list(validate_images(mapping)) == list(STEPS)
    with pytest.raises(ImagesError, match="no image for step.*deploy"):
        validate_images({k: v for k, v in mapping.items() if k != "deploy"})
    with pytest.raises(ImagesError, match="unknown key.*serve"):
        validate_images({**mapping, "serve": "r/serve:1"})
    with pytest.raises(ImagesError, match="not an image reference: train="):
        validate_images({**mapping, "train": "has spaces in it"})
    with pytest.raises(ImagesError, match="JSON object"):
        validate_images(["r/train:1"])


def test_load_images_reads_validates_and_names_the_file(tmp_path):
    path = tmp_path / "images.json"
    with pytest.raises(ImagesError, match="not found.*make images"):
        load_images(path)
    path.write_text("{not json")
    with pytest.raises(ImagesError, match="not valid JSON"):
        load_images(path)
    path.write_text(json.dumps({"ingest": "r/ingest:1"}))
    with pytest.raises(ImagesError, match=re.escape(str(path))):
        load_images(path)
    mapping = {name: f"r/{name}@{DIGEST}" for name in (*STEPS, DATAFLOW_WORKER)}
    path.write_text(json.dumps(mapping))
    assert load_images(path) == mapping


def test_images_files_record_the_platform_and_older_files_still_read(tmp_path):
    mapping = {name: f"r/{name}@{DIGEST}" for name in (*STEPS, DATAFLOW_WORKER)}
    path = tmp_path / "build" / "images.json"
    assert write_images(path, mapping, "linux/amd64") == mapping
    assert json.loads(path.read_text()) == {**mapping, PLATFORM_KEY: "linux/amd64"}
    assert load_images(path) == mapping and load_platform(path) == "linux/amd64"
    assert DEFAULT_PLATFORM == "linux/amd64"
    # Written before the platform was recorded: the same images, no platform.
    path.write_text(json.dumps(mapping))
    assert load_images(path) == mapping and load_platform(path) is None
    for bad in ("amd64", "linux/", "Linux/AMD64", 64):
        path.write_text(json.dumps({**mapping, PLATFORM_KEY: bad}))
        with pytest.raises(ImagesError, match="not a platform"):
            load_images(path)
        with pytest.raises(ImagesError, match="not a platform"):
            write_images(tmp_path / "x.json", mapping, bad)
    # The platform is no image: a mapping of images never takes it.
    with pytest.raises(ImagesError, match="unknown key.*platform"):
        validate_images({**mapping, PLATFORM_KEY: "linux/amd64"})


def test_the_cli_needs_only_the_standard_library():
    """`make images` names images with a bare python3: no project dependency may load."""
    code = (
        "import runpy, sys; sys.argv = ['images.py', '--registry', 'r.example/p', '--tag', 't1'];"
        "sys.modules['kfp'] = None; sys.modules['yaml'] = None; sys.modules['numpy'] = None;"
        f"runpy.run_path({str(ROOT / 'components/images.py')!r}, run_name='__main__')"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == image_refs("r.example/p", "t1")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "components/images.py"), "--tag", ""],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "non-empty" in bad.stderr


# --- Dockerfiles --------------------------------------------------------------------------


def _run_stage(path: Path, stage: str) -> list[str]:
    stages = _stages(path)
    assert stage in stages, f"{path.relative_to(ROOT)} has no stage {stage!r}: {list(stages)}"
    return stages[stage]


def test_base_installs_the_lock_and_the_project_as_a_wheel():
    path = ROOT / "components/Dockerfile.base"
    builder = " ".join(_run_stage(path, "builder"))
    assert "uv export --frozen --no-dev --no-emit-project" in builder
    assert "--no-hashes" not in builder
    assert "--require-hashes -r /requirements/base.txt" in builder
    assert "uv build --wheel" in builder
    assert "--no-deps --target /opt/crypto-kfp/project /wheels/" in builder
    # `pip install .` in the source tree is what left build/ and *.egg-info in images.
    commands = [c.strip() for line in _run_stage(path, "builder") for c in line.split("&&")]
    assert not [c for c in commands if re.search(r"pip install\b.*\s\.$", c)]
    deps = _run_stage(path, "deps")
    assert "COPY --from=builder /opt/venv /opt/venv" in deps
    base = _run_stage(path, "base")
    assert base[0] == "FROM deps AS base"
    assert "COPY --from=builder /opt/crypto-kfp/project /opt/crypto-kfp/project" in base
    for stage in (deps, base):  # the locker stays in the builder
        assert not [line for line in stage if "uv" in line.split() or "/opt/uv" in line]


@pytest.mark.parametrize("step", STEPS)
def test_each_step_stage_adds_only_its_extra_and_runs_as_uid_1000(step):
    path = ROOT / "components" / step / "Dockerfile"
    stage = _run_stage(path, step)
    text = "\n".join(stage)
    installs = re.findall(r"requirements/(\w+)\.txt", text)
    extra = EXTRA_OF_STEP[step]
    assert installs == ([extra] if extra else []), (step, installs)
    if extra:
        # The extra on the locked dependencies, then the project code, last.
        assert "--require-hashes" in text and "--no-deps" in text
        assert stage[0] == f"FROM ${{DEPS_IMAGE}} AS {step}"
        assert _run_stage(path, "project")[0] == "FROM ${BASE_IMAGE} AS project"
        copy = "COPY --from=project /opt/crypto-kfp/project /opt/crypto-kfp/project"
        assert stage.index(copy) > max(i for i, line in enumerate(stage) if "pip install" in line)
    else:
        assert stage[0] == f"FROM ${{BASE_IMAGE}} AS {step}"
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users and users[-1] == "1000", (step, users)
    assert "org.opencontainers.image.source=" in text
    assert "org.opencontainers.image.revision=" in text
    assert not any(line.startswith(("ENTRYPOINT", "CMD")) for line in stage), step
    assert (path.parent / "build.sh").stat().st_mode & 0o111, step


def test_extras_named_in_the_dockerfiles_exist_and_base_has_its_labels():
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    assert {"beam", "ml"} <= extras and "cloud" not in extras
    deps = "\n".join(_run_stage(ROOT / "components/Dockerfile.base", "deps"))
    base = "\n".join(_run_stage(ROOT / "components/Dockerfile.base", "base"))
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.revision"):
        assert f"{label}=" in base
    # The commit in a label of deps would rebuild every step's extra layer at each commit.
    assert "REVISION" not in deps and "LABEL" not in deps
    assert "useradd --create-home --uid 1000" in deps
    for stage in ("deps", "base"):
        users = [
            line
            for line in _run_stage(ROOT / "components/Dockerfile.base", stage)
            if line.startswith("USER ")
        ]
        assert users[-1] == "USER 1000", stage


def test_the_worker_target_is_the_transform_stage_plus_beams_boot():
    """Dataflow starts workers through Beam's boot program; the Beam version must match."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    beam = next(p["version"] for p in lock["package"] if p["name"] == "apache-beam")
    path = ROOT / "components/transform/Dockerfile"
    assert f"apache/beam_python3.11_sdk:{beam}" in path.read_text()
    worker = _run_stage(path, "transform-worker")
    assert worker[0] == "FROM transform AS transform-worker"
    assert "COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam" in worker
    assert worker[-1] == 'ENTRYPOINT ["/opt/apache/beam/boot"]'


def test_the_worker_runs_beam_in_the_images_environment_as_root():
    """Issue 21, defect 1: Dataflow runs the SDK container as root, and Beam's boot must
    use /opt/venv (RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT) instead of a venv of its own."""
    worker = _run_stage(ROOT / "components/transform/Dockerfile", "transform-worker")
    users = [line.split()[1] for line in worker if line.startswith("USER ")]
    assert users and users[-1] in ("0", "root"), users
    env = " ".join(line for line in worker if line.startswith("ENV "))
    assert re.search(r"\bRUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1\b", env), env
    # The step image KFP runs stays non-root.
    transform = _run_stage(ROOT / "components/transform/Dockerfile", "transform")
    assert [line for line in transform if line.startswith("USER ")][-1] == "USER 1000"


def test_the_tune_image_prepares_the_hypertune_directory_for_uid_1000():
    """Issue 21, defect 3: Vertex trials report to /var/hypertune as the image's user."""
    tune = " ".join(_run_stage(ROOT / "components/tune/Dockerfile", "tune"))
    assert re.search(r"install -d -o 1000 -g 1000 -m 0755 /var/hypertune\b", tune), tune


def test_ignore_files_keep_credentials_out():
    for name in (".dockerignore", ".gitignore"):
        lines = (ROOT / name).read_text().splitlines()
        for pattern in (".env", "*.pem", "*key*.json", "Pulumi.*.yaml"):
            assert any(
                line.lstrip("*/") == pattern.lstrip("*/") or line == pattern for line in lines
            ), (name, pattern)
    assert "!Pulumi.yaml" in (ROOT / ".gitignore").read_text().splitlines()


# --- cloudbuild.yaml ----------------------------------------------------------------------


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_cloudbuild_builds_every_image_like_the_build_script():
    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = {step["id"]: step for step in config["steps"]}
    assert set(steps) == {"deps", "base", *STEPS, DATAFLOW_WORKER}
    built = {}
    for name, step in steps.items():
        args = step["args"]
        assert step["name"] == "gcr.io/cloud-builders/docker" and args[0] == "build"
        assert args[-1] == ".", name  # the repository root is the context, as locally
        dockerfile = _flag(args, "--file")
        target = _flag(args, "--target")
        assert (ROOT / dockerfile).is_file(), name
        assert target in _stages(ROOT / dockerfile), (name, target)
        if name not in ("deps", "base"):
            assert "BASE_IMAGE=${_REGISTRY}/base:${_TAG}" in args
            assert "DEPS_IMAGE=${_REGISTRY}/deps:${_TAG}" in args
            assert step["waitFor"] == (["transform"] if name == DATAFLOW_WORKER else ["base"])
        assert "REVISION=${_REVISION}" in args and "SOURCE_URL=${_SOURCE_URL}" in args
        built[name] = (dockerfile, target, _flag(args, "--tag"))
    assert built["deps"] == ("components/Dockerfile.base", "deps", "${_REGISTRY}/deps:${_TAG}")
    assert built["base"] == ("components/Dockerfile.base", "base", "${_REGISTRY}/base:${_TAG}")
    assert steps["base"]["waitFor"] == ["deps"]
    for step in STEPS:
        tag = f"${{_REGISTRY}}/{step}:${{_TAG}}"
        assert built[step] == (f"components/{step}/Dockerfile", step, tag)
    assert built[DATAFLOW_WORKER] == (
        "components/transform/Dockerfile",
        DATAFLOW_WORKER,
        "${_REGISTRY}/transform-worker:${_TAG}",
    )
    # Everything but deps and base is pushed, and so has a digest in the build's results.
    assert sorted(config["images"]) == sorted(built[name][2] for name in (*STEPS, DATAFLOW_WORKER))
    assert set(config["substitutions"]) == {"_REGISTRY", "_TAG", "_REVISION", "_SOURCE_URL"}


def test_the_build_script_and_cloudbuild_use_the_same_targets():
    script = (ROOT / "components/build_images.sh").read_text()
    assert "--file components/Dockerfile.base --target deps" in script
    assert "--file components/Dockerfile.base --target base" in script
    assert 'bases=(--build-arg "DEPS_IMAGE=$deps" --build-arg "BASE_IMAGE=$base")' in script
    assert '--file "components/$step/Dockerfile" --target "$step" "${bases[@]}"' in script
    assert "--file components/transform/Dockerfile --target transform-worker" in script


# --- components/build_images.sh refusals (before any engine is needed) --------------------


def _build(tmp_path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OUT": str(tmp_path / "images.json"), **env}
    return subprocess.run(
        ["bash", str(ROOT / "components/build_images.sh")],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_pushing_without_a_registry_fails_at_once_naming_what_to_set(tmp_path):
    out = _build(tmp_path, PUSH="1", REGISTRY="")
    assert out.returncode == 2
    assert "REGISTRY=" in out.stderr and "registry_url" in out.stderr and "PUSH=0" in out.stderr
    assert not (tmp_path / "images.json").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BUILDER": "kaniko"}, "BUILDER=kaniko"),
        ({"PUSH": "maybe"}, "PUSH=maybe"),
        ({"BUILDER": "cloudbuild", "PUSH": "0"}, "always pushes"),
    ],
)
def test_the_build_script_rejects_bad_settings(tmp_path, env, message):
    out = _build(tmp_path, **{"REGISTRY": "r.example/p", "PUSH": "1", **env})
    assert out.returncode == 2 and message in out.stderr, out.stderr


# --- components/build_images.sh with a fake docker CLI (what it asks the engine) ----------

# A `docker` that logs its arguments (one JSON list a line) and answers the inspections
# the script makes: the built image's platform is FAKE_BUILT_PLATFORM.
_FAKE_DOCKER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == "info":
    print(os.environ.get("FAKE_ENGINE_ARCH", "x86_64"))
elif args[0] == "inspect":
    fmt, ref = args[args.index("--format") + 1], args[-1]
    if "Architecture" in fmt:
        print(os.environ.get("FAKE_BUILT_PLATFORM", "linux/amd64"))
    elif "RepoDigests" in fmt:
        print(ref.rsplit(":", 1)[0] + "@sha256:" + "cd" * 32)
    elif "Id" in fmt:
        print("sha256:" + "ef" * 32)
    elif "Size" in fmt:
        print(123456789)
"""


def _fake_build(tmp_path, **env) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(_FAKE_DOCKER.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "docker.log"
    log.touch()
    out = _build(
        tmp_path,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHON3=sys.executable,
        FAKE_DOCKER_LOG=str(log),
        TAG="t1",
        REVISION="r1",
        SOURCE_URL="https://example.invalid/repo",
        **env,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return out, calls


@pytest.mark.parametrize(
    ("env", "platform"),
    [
        ({"PUSH": "0"}, "linux/amd64"),  # the default, whatever the build machine
        ({"PUSH": "1", "REGISTRY": "r.example/p"}, "linux/amd64"),
        (
            {
                "PUSH": "0",
                "PLATFORM": "linux/arm64",
                "FAKE_BUILT_PLATFORM": "linux/arm64",
                "FAKE_ENGINE_ARCH": "aarch64",
            },
            "linux/arm64",
        ),
    ],
)
def test_every_build_names_the_platform_and_images_json_records_it(tmp_path, env, platform):
    """Issue 21, defect 7: an arm64 laptop built arm64 images, which GCP nodes cannot run."""
    out, calls = _fake_build(tmp_path, **env)
    assert out.returncode == 0, out.stderr
    builds = [call for call in calls if call[0] == "build"]
    expected = ["deps", "base", *STEPS[:2], DATAFLOW_WORKER, *STEPS[2:]]
    assert [_flag(call, "--target") for call in builds] == expected
    for call in builds:
        assert call.count("--platform") == 1 and _flag(call, "--platform") == platform, call
    written = json.loads((tmp_path / "images.json").read_text())
    assert written[PLATFORM_KEY] == platform
    assert load_platform(tmp_path / "images.json") == platform
    assert set(load_images(tmp_path / "images.json")) == {*STEPS, DATAFLOW_WORKER}
    if env["PUSH"] == "1":
        assert all(is_pinned(ref) for ref in load_images(tmp_path / "images.json").values())


def test_the_build_script_refuses_an_image_of_another_platform(tmp_path):
    """An engine that ignored --platform (or emulated another) must not yield images.json."""
    out, _ = _fake_build(tmp_path, PUSH="0", FAKE_BUILT_PLATFORM="linux/arm64")
    assert out.returncode == 2
    assert "built for linux/arm64, not linux/amd64" in out.stderr
    assert not (tmp_path / "images.json").exists()


def test_cloud_build_refuses_another_platform_than_amd64(tmp_path):
    out = _build(tmp_path, BUILDER="cloudbuild", REGISTRY="r.example/p", PLATFORM="linux/arm64")
    assert out.returncode == 2 and "linux/amd64 only" in out.stderr, out.stderr
