"""Command line: ``python -m hwkit {assign,known,grade,merge,...}``. Parses arguments and forwards."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hwkit.errors import UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwkit", description="Build and grade the VAE homework.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="run otter assign and lay out dist/")
    a.add_argument("--master", type=Path, default=Path("assignment/vae_hw.ipynb"))
    a.add_argument("--dist", type=Path, default=Path("dist"))
    a.add_argument("--solutions", type=Path, default=Path("solutions"))
    li = sub.add_parser("lists", help="write the question lists and point tables of the READMEs from the master notebook")
    li.add_argument("--master", type=Path, default=Path("assignment/vae_hw.ipynb"))
    li.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not up to date")
    k = sub.add_parser("known", help="write the known submissions of solutions/ to dist/known/")
    k.add_argument("--spec", type=Path, default=Path("solutions/known_submissions.yaml"))
    k.add_argument("--tamper", type=Path, default=Path("solutions/tamper_submissions.yaml"),
                   help="attacks on the grader, written to dist/tamper/ (default: %(default)s)")
    k.add_argument("--dist", type=Path, default=Path("dist"))
    g = sub.add_parser("grade", help="grade .ipynb/.zip submissions into a gradebook")
    g.add_argument("paths", type=Path, nargs="+", help="submission files or folders (searched recursively)")
    g.add_argument("-o", "--out", type=Path, required=True, help="output folder for gradebook.csv and feedback")
    g.add_argument("--autograder", type=Path, default=Path("dist/vae_hw-autograder.zip"))
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
    m.add_argument("--autograder", type=Path, default=Path("dist/vae_hw-autograder.zip"))
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
    gc.add_argument("--autograder", type=Path, default=Path("dist/vae_hw-autograder.zip"))
    c = sub.add_parser("calibrate", help="held-out NELBO of the reference in the hidden training tests, over seeds")
    c.add_argument("--runs", type=int, default=20)
    c.add_argument("--dist", type=Path, default=Path("dist"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "assign":
            from hwkit.author.build import build_assignment

            built = build_assignment(master=args.master, dist=args.dist, solutions=args.solutions)
            for what, path in built.items():
                print(f"{what:>10}: {path}")
        elif args.command == "lists":
            from hwkit.author.lists import update
            from hwkit.author.questions import read_master

            root = args.master.resolve().parent.parent
            stale = update(root, read_master(args.master), check=args.check)
            for path in stale:
                print(f"{'not up to date' if args.check else 'updated'}: {path.relative_to(root)}")
            return 1 if args.check and stale else 0
        elif args.command == "known":
            from hwkit.author.known import materialise_known
            from hwkit.author.questions import question_points

            points = question_points(args.dist / "vae_hw-autograder.zip")
            for k in materialise_known(spec=args.spec, dist=args.dist, points=points):
                print(k.path)
            if args.tamper:
                for k in materialise_known(spec=args.tamper, dist=args.dist, points=points, baselines=args.spec, folder="tamper"):
                    print(k.path)
        elif args.command == "grade":
            from hwkit.grade.batch import main as grade

            grade(paths=args.paths, out=args.out, autograder=args.autograder, jobs=args.jobs, timeout=args.timeout,
                  force=args.force, memory_mb=args.memory_mb, engine="docker" if args.docker else args.engine,
                  insecure=args.insecure, shard=args.shard)
        elif args.command == "merge":
            from hwkit.grade.merge import main as merge

            merge(shards=args.shards, out=args.out, submissions=args.submissions, autograder=args.autograder,
                  jobs=args.jobs, force=args.force)
        elif args.command == "bench":
            from hwkit.bench.compare import main as bench

            return bench(n=args.n, jobs=args.jobs, dist=args.dist, out=args.out)
        elif args.command == "gradescope":
            from hwkit.platforms.gradescope import run

            return run(args.root)
        elif args.command == "gradescope-check":
            from hwkit.platforms.gradescope import check, summary

            results = check(args.submission, autograder_zip=args.autograder, out=args.out)
            print(summary(results), end="")
            print(f"\nvalid results.json: {args.out / 'results.json'}   student-visible output: {args.out / 'stdout'}")
        elif args.command == "calibrate":
            from hwkit.author.calibrate import calibrate, format_report

            results = calibrate(autograder_zip=args.dist / "vae_hw-autograder.zip",
                                autograder_dir=args.dist / "autograder", runs=args.runs)
            print(format_report(results))
    except UsageError as e:
        print(f"hwkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwkit: interrupted; finished rows are in the gradebook, re-run to continue", file=sys.stderr)
        return 130
    return 0
