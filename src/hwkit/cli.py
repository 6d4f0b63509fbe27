"""Command line: ``python -m hwkit {assign,known,grade,merge,...}``. Parses arguments and forwards."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hwkit.errors import UsageError


MASTER_HELP = "the master notebook (default: the one notebook in assignment/)"
AUTOGRADER_HELP = "the autograder zip (default: the one *-autograder.zip in dist/)"


def _master(path: Path | None) -> Path:
    """The master notebook given, or the one notebook of ``assignment/``."""
    if path is not None:
        if not path.is_file():
            raise UsageError(f"master notebook not found: {path}")
        return path
    found = sorted(Path("assignment").glob("*.ipynb"))
    if len(found) != 1:
        raise UsageError(f"found {len(found)} notebooks in assignment/: name the master notebook with --master")
    return found[0]


def _autograder(path: Path | None) -> Path:
    from hwkit.author.build import find_autograder

    return path if path is not None else find_autograder(Path("dist"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwkit", description="Build and grade a homework written as an otter master notebook.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="run otter assign and lay out dist/")
    a.add_argument("--master", type=Path, help=MASTER_HELP)
    a.add_argument("--dist", type=Path, default=Path("dist"))
    a.add_argument("--solutions", type=Path, help="the answer key's folder (default: solutions/ beside the "
                                                   "master notebook's assignment/ folder)")
    a.add_argument("--autograder-files", type=Path, help="setup.sh, run_autograder and requirements.txt for "
                   "Gradescope (default: the homework's autograder/ if it has one, else the toolkit's)")
    li = sub.add_parser("lists", help="write the question lists and point tables of the READMEs from the master notebook")
    li.add_argument("--master", type=Path, help=MASTER_HELP)
    li.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not up to date")
    k = sub.add_parser("known", help="write the known submissions of solutions/ to dist/known/")
    k.add_argument("--spec", type=Path, default=Path("solutions/known_submissions.yaml"))
    k.add_argument("--tamper", type=Path, help="attacks on the grader, written to dist/tamper/ (default: "
                                               "tamper_submissions.yaml beside --spec, if there)")
    k.add_argument("--dist", type=Path, default=Path("dist"))
    g = sub.add_parser("grade", help="grade .ipynb/.zip submissions into a gradebook")
    g.add_argument("paths", type=Path, nargs="+", help="submission files or folders (searched recursively)")
    g.add_argument("-o", "--out", type=Path, required=True, help="output folder for gradebook.csv and feedback")
    g.add_argument("--autograder", type=Path, help=AUTOGRADER_HELP)
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: all cores)")
    g.add_argument("--timeout", type=float, default=180.0, help="seconds per submission (default: 180)")
    g.add_argument("--force", action="store_true", help="re-grade submissions already in the gradebook")
    g.add_argument("--memory-mb", type=int, default=2048, help="address-space cap per submission above the pre-imported libraries (default: 2048)")
    g.add_argument("--engine", choices=["fork", "otter", "docker"], default="fork",
                   help="fork: pre-imported worker forked per submission (default); otter: one `otter run` per "
                        "submission; docker: otter's `otter grade`, one container per submission (needs a Docker engine)")
    g.add_argument("--insecure", action="store_true",
                   help="grade even where submissions cannot be confined (no namespaces, no Landlock): they run with your rights")
    g.add_argument("--docker", action="store_true", help="the same as --engine docker")
    g.add_argument("--shard", metavar="K/N", help="grade only shard K of N (1 <= K <= N), chosen by a hash of each "
                                                  "submission's name; `hwkit merge` joins the N output folders")
    m = sub.add_parser("merge", help="join the output folders of `grade --shard K/N` (every K) into one")
    m.add_argument("shards", type=Path, nargs="+", metavar="SHARD_OUT", help="the shards' output folders")
    m.add_argument("-o", "--out", type=Path, required=True, help="output folder: what one run over the whole class writes")
    m.add_argument("--submissions", type=Path, action="append", metavar="PATH",
                   help="the submissions the shards graded, for the written answers' pages (default: the paths "
                        "the shards recorded in shard.json); repeat for several")
    m.add_argument("--autograder", type=Path, help=AUTOGRADER_HELP)
    m.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="PDFs made at once (default: all cores)")
    m.add_argument("--force", action="store_true", help="replace the gradebook, report and feedback already in OUT")
    b = sub.add_parser("bench", help="grade N submissions with a serial `otter run` loop and with the fork engine; compare")
    b.add_argument("--n", type=int, default=40, help="submissions generated from dist/known (default: 40)")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fork engine: submissions at once (default: all cores)")
    b.add_argument("--dist", type=Path, default=Path("dist"))
    b.add_argument("--out", type=Path, default=Path("dist/bench"), help="where the submissions and both runs' results go")
    gs = sub.add_parser("gradescope", help="grade the submission under ROOT/submission (what run_autograder runs)")
    gs.add_argument("--root", type=Path, default=Path("/autograder"))
    gc = sub.add_parser("gradescope-check", help="run the autograder zip on one submission as Gradescope would")
    gc.add_argument("submission", type=Path)
    gc.add_argument("-o", "--out", type=Path, required=True)
    gc.add_argument("--autograder", type=Path, help=AUTOGRADER_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "assign":
            from hwkit.author.build import build_assignment

            master = _master(args.master)
            built = build_assignment(master=master, dist=args.dist,
                                     solutions=args.solutions or master.parent.parent / "solutions",
                                     autograder_dir=args.autograder_files)
            for what, path in built.items():
                print(f"{what:>10}: {path}")
        elif args.command == "lists":
            from hwkit.author.lists import update
            from hwkit.author.questions import read_master

            master = _master(args.master)
            root = master.resolve().parent.parent
            stale = update(root, read_master(master), check=args.check)
            for path in stale:
                print(f"{'not up to date' if args.check else 'updated'}: {path.relative_to(root)}")
            return 1 if args.check and stale else 0
        elif args.command == "known":
            from hwkit.author.build import find_autograder
            from hwkit.author.known import materialise_known
            from hwkit.author.questions import question_points

            if not args.spec.is_file():
                raise UsageError(f"known submissions not found: {args.spec}")
            points = question_points(find_autograder(args.dist))
            for k in materialise_known(spec=args.spec, dist=args.dist, points=points):
                print(k.path)
            tamper = args.tamper or args.spec.parent / "tamper_submissions.yaml"
            if args.tamper or tamper.is_file():  # attacks are optional for a homework
                for k in materialise_known(spec=tamper, dist=args.dist, points=points, baselines=args.spec, folder="tamper"):
                    print(k.path)
        elif args.command == "grade":
            from hwkit.grade.batch import main as grade

            grade(paths=args.paths, out=args.out, autograder=_autograder(args.autograder), jobs=args.jobs, timeout=args.timeout,
                  force=args.force, memory_mb=args.memory_mb, engine="docker" if args.docker else args.engine,
                  insecure=args.insecure, shard=args.shard)
        elif args.command == "merge":
            from hwkit.grade.merge import main as merge

            merge(shards=args.shards, out=args.out, submissions=args.submissions, autograder=_autograder(args.autograder),
                  jobs=args.jobs, force=args.force)
        elif args.command == "bench":
            from hwkit.bench.compare import main as bench

            return bench(n=args.n, jobs=args.jobs, dist=args.dist, out=args.out)
        elif args.command == "gradescope":
            from hwkit.platforms.gradescope import run

            return run(args.root)
        elif args.command == "gradescope-check":
            from hwkit.platforms.gradescope import check, summary

            results = check(args.submission, autograder_zip=_autograder(args.autograder), out=args.out)
            print(summary(results), end="")
            print(f"\nvalid results.json: {args.out / 'results.json'}   student-visible output: {args.out / 'stdout'}")
    except UsageError as e:
        print(f"hwkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwkit: interrupted; finished rows are in the gradebook, re-run to continue", file=sys.stderr)
        return 130
    return 0
