"""Attacks on the grader (solutions/tamper_submissions.yaml) score exactly what the mistake they start from scores.

Every attack is graded twice: by `make grade`'s runner and through the Gradescope autograder zip's entry point
(each attack in a root laid out as on Gradescope, graded by the zip's own code; one grading server per half of the
corpus, as `make grade` shares one across a class: an attack that reached the server or a later submission would
change the others' scores). The comparisons happen in the verdict process, which never runs student code,
so patching comparisons or grading code, forging messages or files, exiting early and leaving
processes behind all leave the score where the wrong answer puts it.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hwkit.grade.batch import grade_submissions, safe_name
from hwkit.platforms.gradescope import check
from hwkit.author.known import materialise_known
from hwkit.grade.results import question_scores

FORGEABLE = 1.0  # points a notebook implementing nothing may get (solutions/README.md, where the verdict is decided)
ROOT = Path(__file__).resolve().parents[1]
ISOLATED = os.geteuid() == 0  # the minimal root and a user id of its own need root, as on Gradescope

# A variable of the grader's environment that no submission may learn: set before any grading, so
# that the fork server the runs come from (make grade) and run_autograder (Gradescope) both hold it.
CANARY = "HWKIT-CANARY-5d0c41e2"
os.environ["HWKIT_CANARY"] = CANARY
LEAKS = ("tamper-leak-in-exceptions", "tamper-hidden-to-public")
EXFIL_PORT = 47611  # where tamper-hidden-to-public sends what its probes see


class _Listener:
    """Accepts connections on 127.0.0.1:EXFIL_PORT and keeps what arrives."""

    def __init__(self):
        import socket
        import threading

        self.received = bytearray()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("127.0.0.1", EXFIL_PORT))
            self.sock.listen(64)
            self.listening = True
            threading.Thread(target=self._serve, daemon=True).start()
        except OSError:
            self.listening = False

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    while chunk := conn.recv(1 << 16):
                        self.received += chunk
                except OSError:
                    pass


@pytest.fixture(scope="module")
def listener() -> _Listener:
    """The listener, up for the whole module from before the first attack is graded (made by a fixture, not at
    import: every worker of `make test` imports this module, and only one can hold the port)."""
    listening = _Listener()
    yield listening
    listening.sock.close()


def _hidden_probe_names(autograder_zip: Path) -> set[str]:
    """The names of the probes of every hidden test in the autograder zip."""
    import ast

    names = set()
    with zipfile.ZipFile(autograder_zip) as zf:
        for name in zf.namelist():
            if not (name.startswith("tests/") and name.endswith(".py")):
                continue
            for func in ast.parse(zf.read(name).decode()).body:
                hidden = isinstance(func, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and any(k.arg == "hidden" and getattr(k.value, "value", False) is True
                                                    for k in d.keywords) for d in func.decorator_list)
                if hidden:
                    names |= {n.name for n in func.body if isinstance(n, ast.FunctionDef) and n.name.startswith("probe_")}
    return names


@pytest.fixture(scope="module")
def tamper(dist, points, tmp_path_factory, listener):
    out = tmp_path_factory.mktemp("tamper-dist")
    for part in ("autograder", "student"):
        os.symlink(dist / part, out / part)
    return materialise_known(spec=ROOT / "solutions" / "tamper_submissions.yaml", dist=out, points=points,
                             baselines=ROOT / "solutions" / "known_submissions.yaml", folder="tamper")


@pytest.fixture(scope="module")
def graded_tamper_dir(tamper, autograder_zip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("graded-tamper")
    grade_submissions([k.path for k in tamper], out=out, autograder_zip=autograder_zip,
                      jobs=os.cpu_count() or 2, timeout=600, progress=None)
    return out


@pytest.fixture(scope="module")
def graded_tamper(graded_tamper_dir) -> dict[str, dict[str, str]]:
    with open(graded_tamper_dir / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


# Grades several Gradescope roots, each laid out as check() lays one out, in one process: for each root it runs
# hwkit.platforms.gradescope.run (what run_autograder runs), with open_engine made to hand every root the grading
# server the first root started, instead of starting one (torch, otter and the confinement probe) per submission.
# Everything after the server is run's own: the hidden tests' folder closed, Gradescope's budgets, the reading and grading,
# results.json written and validated, the summary printed (captured per root). Usage: DRIVER ROOT OUT [ROOT OUT ...]
GRADESCOPE_DRIVER = """
import contextlib, io, sys
from pathlib import Path
import hwkit.platforms.gradescope as gs
from hwkit.grade.grading import Engine

shared = []
real_open = gs.open_engine

def open_shared(*args, **kwargs):
    if not shared:
        shared.append(real_open(*args, **kwargs))
    engine = shared[0]
    return Engine(engine.grade, lambda: None, engine.confinement, engine.ours)

gs.open_engine = open_shared
pairs = sys.argv[1:]
try:
    for root, out in zip(pairs[::2], pairs[1::2]):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            gs.run(Path(root))
        Path(out, "stdout").write_text(buffer.getvalue())
finally:
    for engine in shared:
        engine.close()
"""


def _gradescope_root(submission: Path, autograder_zip: Path) -> Path:
    """A temporary root laid out as ``check`` lays it out (and where it does: /tmp/hwkit-gs-*)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="hwkit-gs-"))
    for part in ("source", "submission", "results"):
        (root / part).mkdir()
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    shutil.copy2(submission, root / "submission")
    return root


@pytest.fixture(scope="module")
def gradescope_tamper(tamper, autograder_zip, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    """Every attack through the zip's Gradescope entry point: two processes, one grading server each, half the
    corpus each (a submission that could reach the server or the next submission shows in the others' scores)."""
    from hwkit.grade.results import validate_results

    out = tmp_path_factory.mktemp("gradescope-tamper")
    roots = {k.name: _gradescope_root(k.path, autograder_zip) for k in tamper}
    try:
        halves = [tamper[i::2] for i in range(2)]
        procs = []
        for i, half in enumerate(halves):
            args = []
            for k in half:
                (out / k.name).mkdir()
                args += [str(roots[k.name]), str(out / k.name)]
            first = roots[half[0].name]
            env = dict(os.environ, AUTOGRADER_ROOT=str(first), PYTHONPATH=str(first / "source"), OMP_NUM_THREADS="1")
            log = open(out / f"process-{i}.log", "w")
            procs.append((subprocess.Popen([sys.executable, "-c", GRADESCOPE_DRIVER, *args], cwd=first / "source",
                                           env=env, stdout=log, stderr=subprocess.STDOUT), log))
        for proc, log in procs:
            proc.wait(timeout=1800)
            log.close()
        combined = "".join((out / f"process-{i}.log").read_text(errors="replace") for i in range(2))
        assert all(proc.returncode == 0 for proc, _ in procs), combined[-3000:]
        found = {}
        for k in tamper:
            results = json.loads((roots[k.name] / "results" / "results.json").read_text())
            validate_results(results)
            # the attack's own summary, and whatever either process printed (so nothing any run leaked escapes)
            found[k.name] = results, (out / k.name / "stdout").read_text(errors="replace") + combined
        return found
    finally:
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)


def test_the_corpus_covers_every_attack(tamper):
    """Does the corpus hold each attack the grader must withstand, each on a known mistake?"""
    names = {k.name for k in tamper}
    assert {"tamper-patch-comparisons", "tamper-patch-otter", "tamper-patch-grader", "tamper-rewrite-files",
            "tamper-forged-results-json", "tamper-os-exit", "tamper-sys-exit", "tamper-background-process",
            "tamper-read-everything", "tamper-forge-every-probe", "tamper-collect-probes", "tamper-leak-in-exceptions",
            "tamper-replace-data", "tamper-memorising-vae", "tamper-hidden-to-public",
            "tamper-read-grader-memory"} <= names
    assert all(k.baseline for k in tamper)


@pytest.mark.slow
def test_no_attack_scores_more_than_its_baseline_through_make_grade(tamper, graded_tamper, known, points):
    """Through make grade's runner, does every attack score exactly its baseline mistake's expected scores?
    (test_corpus.py checks that each known mistake, graded, scores its expected scores.)"""
    baselines = {k.name: k.expected for k in known}
    for k in tamper:
        row, base = graded_tamper[k.path.name], baselines[k.baseline]
        got = {q: float(row[q]) for q in points}
        assert got == k.expected, f"{k.name}: {got} (status {row['status']})"
        # Made-up answers pass only the four checks of shapes and self-consistency listed in solutions/README.md.
        gain = sum(max(got[q] - base[q], 0.0) for q in points)
        assert gain <= FORGEABLE, f"{k.name} gained {gain:g} points over {k.baseline}"


@pytest.mark.slow
def test_no_attack_scores_more_than_its_baseline_on_gradescope(tamper, gradescope_tamper):
    """Through the Gradescope autograder, the same; and the student-facing output repeats nothing forged."""
    for k in tamper:
        results, stdout = gradescope_tamper[k.name]
        got = question_scores(results)
        assert got == k.expected, f"{k.name}: {got}; {results.get('output')}"
        assert results["score"] == sum(k.expected.values())
        assert "forged" not in stdout and "All tests passed" not in stdout


@pytest.mark.slow
@pytest.mark.skipif(not ISOLATED, reason="the minimal root needs root; without it the notebook sees the whole filesystem")
def test_reading_every_readable_file_finds_nothing_hidden(gradescope_tamper, graded_tamper, points):
    """Did the notebook that reads every file it can find no hidden test, reference solution or expected value?

    Its first cell reads every file under / and, after each later cell, would set the right q2b had
    it found one, and sets a wrong q4b once it has read 2000 files or more (so the search did run).
    """
    for scores in ({q: float(v) for q, v in graded_tamper["tamper-read-everything.ipynb"].items() if q in points},
                   question_scores(gradescope_tamper["tamper-read-everything"][0])):
        assert scores["q2b"] == 0, "a hidden test, reference solution or expected value was readable"
        assert scores["q4b"] == 0, "the search did not run"


class _Marker:
    """A pickle that, if ever unpickled, creates a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.slow
def test_pickles_in_a_zip_submission_never_run(known, autograder_zip, tmp_path, points):
    """Is a zip with a crafted .OTTER_LOG and other pickles graded from its notebook alone, nothing unpickled?"""
    marker = tmp_path / "unpickled"
    upload = tmp_path / "vae_hw_2026_11_25.zip"
    wrong = next(k for k in known if k.name == "q1c-sign-flipped")
    with zipfile.ZipFile(upload, "w") as zf:
        zf.write(wrong.path, "vae_hw.ipynb")
        for name in (".OTTER_LOG", "results.pkl", "vae_hw.pickle", "data/digits.npz"):
            zf.writestr(name, pickle.dumps(_Marker(marker)))
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Marker(tmp_path / "works")))  # the payload is live: unpickling it does create a file
    assert (tmp_path / "works").exists()
    results = check(upload, autograder_zip=autograder_zip, out=tmp_path / "gradescope")
    grade_submissions([upload], out=tmp_path / "grades", autograder_zip=autograder_zip, jobs=1, timeout=600, progress=None)
    with open(tmp_path / "grades" / "gradebook.csv", newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert not marker.exists()
    assert question_scores(results) == wrong.expected
    assert {q: float(row[q]) for q in points} == wrong.expected


@pytest.mark.slow
def test_the_comparison_attack_is_live_where_tests_run_in_the_kernel(tamper, autograder_zip, known):
    """Graded by `otter run`, which runs the tests in the student's kernel, does the attack lift q2d?

    This is what the split into probes and verdicts prevents; the attack must be a real one.
    """
    from hwkit.grade.runner import run_otter

    attack = next(k for k in tamper if k.name == "tamper-patch-comparisons")
    result = run_otter(attack.path.read_bytes(), autograder_zip=autograder_zip, name="vae_hw", timeout=600)
    baseline = next(k for k in known if k.name == attack.baseline)
    assert result.scores["q2d"] > baseline.expected["q2d"] == attack.expected["q2d"] == 0


def _student_texts(graded_tamper_dir: Path, gradescope_tamper, name: str) -> dict[str, str]:
    """Everything a student may read of one attack's grading: feedback, results.json, Gradescope stdout."""
    import json

    texts = {}
    folder = graded_tamper_dir / "feedback" / safe_name(f"{name}.ipynb")
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        texts[f"make grade {path.name}"] = path.read_text(errors="replace")
    results, stdout = gradescope_tamper[name]
    texts["gradescope results.json"] = json.dumps(results)
    texts["gradescope stdout"] = stdout
    return texts


def _hidden_messages(graded_tamper_dir: Path, gradescope_tamper, name: str) -> list[str]:
    folder = graded_tamper_dir / "feedback" / safe_name(f"{name}.ipynb")
    lines = [line for line in (folder / "feedback.txt").read_text().splitlines() if "(hidden):" in line]
    for t in gradescope_tamper[name][0]["tests"]:
        if t["name"].endswith("hidden tests: details"):
            lines += t.get("output", "").splitlines()
    return lines


@pytest.mark.slow
def test_errors_carrying_the_grader_s_secrets_leak_nothing(tamper, graded_tamper_dir, gradescope_tamper, autograder_zip):
    """Do errors that carry the grader's environment, caller frames and probes leave no trace of them?

    The canary is in the grader's environment; the attacks put it (from /proc/self/environ and
    os.environ), the probes' sources and arguments, and what other snapshots captured into every
    error message, every print and every connection they can make. A public test may show the
    student's own message (prefixed LEAK-); nothing of a hidden probe, and no canary, may appear.
    """
    hidden = _hidden_probe_names(autograder_zip)
    assert hidden
    for name in LEAKS:
        for where, text in _student_texts(graded_tamper_dir, gradescope_tamper, name).items():
            assert CANARY not in text, f"{name}: the grader's environment leaked into {where}"
            assert not [p for p in hidden if p in text], f"{name}: a hidden probe leaked into {where}"
        for line in _hidden_messages(graded_tamper_dir, gradescope_tamper, name):
            assert "LEAK" not in line, f"{name}: a hidden test repeated the student's message: {line}"


@pytest.mark.slow
def test_hidden_feedback_carries_no_text_from_the_notebook(graded_tamper_dir, gradescope_tamper):
    """Does a hidden test's message about an error name only one of a few fixed types and one of the probe's objects?

    tamper-hidden-to-public answers each hidden probe with an error whose type counts the other questions'
    probes its snapshot has learnt of, and whose text carries them. Which of the few types it raises stays
    its choice (a few bits per failed hidden test, as whether the test passes is); no text of its own
    reaches the message.
    """
    from hwkit.grade.verdict import KNOWN_ERRORS

    objects = {"kl_divergence", "q2b_answer", "q2c_answer", "elbo", "kl_normal_standard", "q4b_answer",
               "reparameterize", "VAE", "negative_elbo", "train_vae", "your code"}
    for line in _hidden_messages(graded_tamper_dir, gradescope_tamper, "tamper-hidden-to-public"):
        message = line.split(": ", 1)[-1]
        if " raised by " in message:
            kind, function = message.split(" raised by ", 1)
            assert kind in KNOWN_ERRORS + ("an exception",) and function in objects, f"a hidden message carries the notebook's text: {line}"


@pytest.mark.slow
def test_no_probe_reaches_the_network(listener, graded_tamper_dir, gradescope_tamper):
    """Did nothing the probes of tamper-hidden-to-public saw reach a listener on the grader's host?"""
    assert listener.listening, f"port {EXFIL_PORT} was taken: the test could not listen"
    assert b"probe_" not in listener.received, (
        f"{len(listener.received)} bytes of probes (hidden ones included) left the sandbox over the network")


def _grade_as_other_user(path: Path, autograder_zip: Path):
    """Grade one notebook through make grade's executor as a grader without root would (no user id of its own)."""
    from hwkit.grade.executor import Executor

    with Executor(autograder_zip) as ex:
        ex.isolated_users = False  # what os.geteuid() != 0 gives
        return ex.grade(path.read_bytes())


@pytest.mark.slow
def test_a_grader_without_root_leaks_nothing(tamper, autograder_zip):
    """Graded by an ordinary user, do the leaking notebook and the memory reader still learn nothing?"""
    import json

    attacks = {k.name: k for k in tamper}
    leak = _grade_as_other_user(attacks["tamper-leak-in-exceptions"].path, autograder_zip)
    assert CANARY not in json.dumps(leak.results), "the grader's environment leaked into results.json (/proc/self/environ)"
    reader = attacks["tamper-read-grader-memory"]
    scores = _grade_as_other_user(reader.path, autograder_zip).scores
    assert scores == reader.expected, f"the hidden tests were read from the grading process's memory: {scores}"
