"""Python part of the python image's self-test (run by ./self-test, not alone).

Reads EXPECTED_VERSION and EXPECTED_ARCH from the environment (./self-test has
already checked that they are set and well formed). Prints one line per check,
"ok - <what>" or "FAIL - <what>: <detail>", and exits 1 when any check failed.
Needs no network: the package manager checks install a wheel built here.
"""

import base64
import hashlib
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

EXPECTED_VERSION = os.environ.get("EXPECTED_VERSION", "")
EXPECTED_ARCH = os.environ.get("EXPECTED_ARCH", "")

# Docker's architecture names for what platform.machine() / uname -m report.
ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

failures = 0


def ok(what):
    print("ok - " + what, flush=True)


def fail(what, detail):
    global failures
    failures += 1
    detail = " ".join(str(detail).split())  # one line in the build log
    print("FAIL - %s: %s" % (what, detail), flush=True)


def version_matches(actual, expected):
    """22 matches 22 and 22.23.3; 3.13 matches 3.13.9; 3.1 does not match 3.13.0."""
    return actual == expected or actual.startswith(expected + ".")


def run(args, **kwargs):
    """Runs a command, returns (exit status, stdout+stderr)."""
    try:
        p = subprocess.run(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=300,
            **kwargs
        )
    except (OSError, subprocess.SubprocessError) as e:
        return 127, "%s: %s" % (args[0], e)
    return p.returncode, p.stdout.strip()


def last_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"


def check_version():
    actual = platform.python_version()
    what = "python version matches EXPECTED_VERSION=%s" % EXPECTED_VERSION
    if version_matches(actual, EXPECTED_VERSION):
        ok("python version %s matches EXPECTED_VERSION=%s" % (actual, EXPECTED_VERSION))
    else:
        fail(what, "%s is Python %s" % (sys.executable, actual))


def check_python_command():
    """`python` (what users type and CMD runs) is the same Python as python3."""
    what = "python command is Python %s" % platform.python_version()
    path = shutil.which("python")
    if path is None:
        fail(what, "no python on PATH")
        return
    status, out = run([path, "-c", "import platform; print(platform.python_version())"])
    if status != 0:
        fail(what, "%s exited %d: %s" % (path, status, last_line(out)))
    elif out != platform.python_version():
        fail(what, "%s is Python %s" % (path, out))
    else:
        ok("%s (%s)" % (what, path))


def check_arch():
    machine = platform.machine()
    arch = ARCH_NAMES.get(machine, machine)
    what = "python sees architecture %s" % EXPECTED_ARCH
    bits = struct.calcsize("P") * 8
    # MULTIARCH is fixed when the interpreter is built (x86_64-linux-gnu,
    # aarch64-linux-gnu): a wrong binary under emulation would show here.
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    built_for = ARCH_NAMES.get(multiarch.split("-")[0], multiarch) if multiarch else arch
    if arch != EXPECTED_ARCH:
        fail(what, "platform.machine() is %s (%s)" % (machine, arch))
    elif built_for != EXPECTED_ARCH:
        fail(what, "interpreter built for %s (MULTIARCH=%s)" % (built_for, multiarch))
    elif bits != 64:
        fail(what, "%d-bit interpreter" % bits)
    else:
        ok("%s (platform.machine()=%s, %d-bit, MULTIARCH=%s)" % (what, machine, bits, multiarch or "n/a"))


def check_stdlib():
    """Extension modules that a Python built without its libraries would lack."""
    what = "standard library extension modules import"
    missing = []
    for name in ("ssl", "sqlite3", "zlib", "bz2", "lzma", "ctypes", "hashlib", "decimal", "venv", "ensurepip"):
        try:
            __import__(name)
        except Exception as e:  # noqa: BLE001 - report any import failure
            missing.append("%s (%s)" % (name, e))
    if missing:
        fail(what, "cannot import " + ", ".join(missing))
    else:
        import ssl

        ok("%s (ssl: %s)" % (what, ssl.OPENSSL_VERSION))


def check_script():
    what = "a Python script computes correct results"
    try:
        limit = 7920  # the 1000th prime
        sieve = bytearray([1]) * (limit + 1)
        sieve[0:2] = b"\x00\x00"
        for i in range(2, int(limit**0.5) + 1):
            if sieve[i]:
                sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
        primes = [i for i, is_prime in enumerate(sieve) if is_prime]
        digest = hashlib.sha256(b"evergreen self-test").hexdigest()
        doc = json.loads(json.dumps({"primes": len(primes), "sum": sum(primes)}))
        want = {"primes": 1000, "sum": 3682913}
        want_digest = "b4ee810a46e78acd2d95e84ffeb61349974eea06b3a44f39999227a8e808b4ef"
        if doc != want:
            fail(what, "primes up to 7920: got %s, want %s" % (doc, want))
        elif digest != want_digest:
            fail(what, "sha256 got %s, want %s" % (digest, want_digest))
        else:
            ok("%s (sum of the first 1000 primes, sha256, json)" % what)
    except Exception as e:  # noqa: BLE001
        fail(what, repr(e))


def pip_env():
    env = dict(os.environ)
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",  # no look-up on the network
        PIP_NO_INPUT="1",
        PIP_NO_INDEX="1",  # everything installed here is local
        PIP_NO_CACHE_DIR="1",
        PIP_ROOT_USER_ACTION="ignore",
    )
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    env.pop("PYTHONPATH", None)
    return env


def pip_python_version(out):
    """'pip 25.2 from /x (python 3.13)' -> '3.13'."""
    if "(python " not in out:
        return None
    return out.rsplit("(python ", 1)[1].rstrip(")").strip()


def check_pip_version():
    major_minor = "%d.%d" % sys.version_info[:2]
    what = "pip works with Python %s" % major_minor
    reports = []
    for args in ([sys.executable, "-m", "pip", "--version"], ["pip", "--version"]):
        status, out = run(args, env=pip_env())
        label = " ".join(args[1:] if args[0] == sys.executable else args)
        if status != 0:
            fail(what, "%s exited %d: %s" % (label, status, last_line(out)))
            return
        if pip_python_version(out) != major_minor:
            fail(what, "%s says: %s" % (label, out))
            return
        reports.append(out.split(" from ")[0])
    ok("%s (%s)" % (what, reports[0]))


def check_pip_check():
    what = "pip check finds no broken requirements"
    status, out = run([sys.executable, "-m", "pip", "check"], env=pip_env())
    if status == 0:
        ok(what)
    else:
        fail(what, out)


def write_wheel(directory):
    """Builds a tiny pure-Python wheel by hand (no build backend, no network)."""
    name, version = "evergreen_self_test_pkg", "1.0.0"
    dist_info = "%s-%s.dist-info" % (name, version)
    files = {
        name + "/__init__.py": "def answer():\n    return sum(range(10)) * 2 - 48\n",
        dist_info + "/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
        dist_info + "/WHEEL": "Wheel-Version: 1.0\nGenerator: evergreen-self-test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record.append(dist_info + "/RECORD,,")
    files[dist_info + "/RECORD"] = "\n".join(record) + "\n"
    wheel = os.path.join(directory, "%s-%s-py3-none-any.whl" % (name, version))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


def check_venv_install():
    what = "python -m venv + offline pip install of a local wheel"
    tmp = tempfile.mkdtemp(prefix="self-test-python-")
    try:
        venv = os.path.join(tmp, "venv")
        status, out = run([sys.executable, "-m", "venv", venv], env=pip_env())
        if status != 0:
            fail(what, "python -m venv exited %d: %s" % (status, last_line(out)))
            return
        vpython = os.path.join(venv, "bin", "python")
        wheel = write_wheel(tmp)
        status, out = run([vpython, "-m", "pip", "install", "--no-index", wheel], env=pip_env())
        if status != 0:
            fail(what, "pip install exited %d: %s" % (status, last_line(out)))
            return
        status, out = run(
            [vpython, "-c", "import evergreen_self_test_pkg as p; print(p.answer())"],
            env=pip_env(),
            cwd=tmp,
        )
        if status != 0 or out != "42":
            fail(what, "importing the installed package gave exit %d: %s" % (status, last_line(out)))
            return
        status, out = run([vpython, "-m", "pip", "check"], env=pip_env())
        if status != 0:
            fail(what, "pip check in the venv: " + last_line(out))
            return
        ok(what)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    for check in (
        check_version,
        check_python_command,
        check_arch,
        check_stdlib,
        check_script,
        check_pip_version,
        check_pip_check,
        check_venv_install,
    ):
        try:
            check()
        except Exception as e:  # noqa: BLE001 - a crash is a failed check, not a traceback
            fail(check.__name__, repr(e))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
