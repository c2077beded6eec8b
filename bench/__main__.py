"""python -m bench list | run | sweep | scan | probe: train the catalogue, or scan it at initialisation, into parquet;
or profile your own Keras model's signal at initialisation."""

import argparse
import os
import re
import sys
from dataclasses import asdict, replace
from pathlib import Path

from bench import console
from bench.errors import UserError, folder_argument, held_signals, interrupted, stop_on_signals
from bench.scenarios import CATALOGUE, CONTROLS, PROFILES, SCENARIOS

MAX_DEPTH = 256


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(message)


def choice(kind: str, valid) -> callable:
    def parse(text: str) -> str:
        if text not in valid:
            raise argparse.ArgumentTypeError(f"unknown {kind} '{text}'; valid: {', '.join(valid)}")
        return text
    return parse


def integer_list(what: str, low: int, high: int) -> callable:
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be whole numbers, got '{text}'") from None
        bad = [v for v in values if not low <= v <= high]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, got '{text}'")
        return distinct_values(what, values)
    return parse


def one_integer(what: str, low: int, high: int) -> callable:
    def parse(text: str) -> int:
        values = integer_list(what, low, high)(text)
        if len(values) > 1:
            raise argparse.ArgumentTypeError(f"{what} takes one number, got '{text}'")
        return values[0]
    return parse


def distinct_values(what: str, values: list) -> list:
    """The values, refused when one is repeated (it would be trained twice)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{what} repeats {', '.join(repeated)}; give each once")
    return values


SCHEDULER = re.compile(r"((tcp|tls|ucx|ws|wss)://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}")


def scheduler_address(text: str) -> str:
    """A Dask scheduler's address, checked before any connection is tried (a malformed one hangs, then fails)."""
    if not SCHEDULER.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a Dask scheduler address such as tcp://HOST:8786, got '{text}'")
    return text.strip()


def scenario_list(text: str) -> list[str]:
    names = [choice("scenario", SCENARIOS)(name.strip()) for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--scenarios names none; valid: {', '.join(SCENARIOS)}")
    return distinct_values("--scenarios", names)


def shard_spec(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard must be i/N with 1 <= i <= N (e.g. 2/4), got '{text}'")
    return index, count


def add_common(parser: argparse.ArgumentParser, training: bool = True) -> None:
    parser.add_argument("--profile", type=choice("profile", PROFILES),
                        help="default: quick (with --control: the profile of the folder's runs)")
    if training:
        parser.add_argument("--epochs", type=one_integer("--epochs", 1, 1000),
                            help="every cell trains this many epochs (default: the profile's budgets)")
    parser.add_argument("--dataset", type=choice("dataset", ("auto", "mnist", "fashion_mnist", "digits", "synthetic")),
                        help="default: the profile's (auto: first of mnist, fashion_mnist, digits that loads; "
                             "with --control: the dataset of the folder's runs)")
    parser.add_argument("--data-dir", help="folder with IDX .gz or .npz files (or set GRADBENCH_DATA_DIR)")
    parser.add_argument("--results", type=folder_argument,
                        help="results folder (default: results/<profile>/tf-<TF version>)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's and Keras's own messages (start-up lines, downloads, warnings)")
    if training:
        parser.add_argument("--xla", choices=("on", "off"), default="off",
                            help="compile the train step with XLA (on a CPU it compiles for longer and is not faster)")


def make_parser() -> Parser:
    parser = Parser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.add_parser("list", help="print the scenario catalogue and the profiles")
    run = commands.add_parser("run", help="train one run")
    run.add_argument("--scenario", type=choice("scenario", SCENARIOS), required=True)
    run.add_argument("--depth", type=integer_list("--depth", 1, MAX_DEPTH), required=True)
    run.add_argument("--seed", type=integer_list("--seed", 0, 2**31 - 1), default=[0])
    sweep = commands.add_parser("sweep", help="train a profile's grid, skipping runs already stored")
    sweep.add_argument("--scenarios", type=scenario_list, help="comma-separated (default: all)")
    sweep.add_argument("--depths", type=integer_list("--depths", 1, MAX_DEPTH), help="default: the profile's")
    sweep.add_argument("--seeds", type=integer_list("--seeds", 0, 2**31 - 1), help="default: the profile's")
    sweep.add_argument("--shard", type=shard_spec, default=(1, 1), help="i/N: run only shard i of N")
    sweep.add_argument("--control", type=choice("control", CONTROLS),
                       help="train the control runs (init_ulp: initial weights 1 ulp apart) of the runs of the grid "
                            "stored in the results folder, into its controls/ folder: the noise floor of a diff")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--scheduler", type=scheduler_address, default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
                       help="a Dask scheduler (tcp://HOST:8786): its workers train the runs (default: "
                            "$DASK_SCHEDULER_ADDRESS, else this machine)")
    where.add_argument("--workers", type=one_integer("--workers", 1, 256),
                       help="train in N worker processes of a Dask cluster on this machine, with the same numbers; "
                            "for machines with more cores than one process keeps busy (on 2 cores the local sweep "
                            "is faster)")
    where.add_argument("--jobs", type=one_integer("--jobs", 1, 64), default=1,
                       help="train in N processes of this machine, which share the grid (while one traces a cell's "
                            "graphs another trains: 2 on 2 cores store the quick profile 18%% sooner); the "
                            "same numbers")
    sweep.add_argument("--site", type=folder_argument, metavar="DIR",
                       help="build the report into DIR as runs are stored (in the background, every minute at most) "
                            "and at the end, so it can be read while the sweep trains")
    sweep.add_argument("--site-results", type=folder_argument, metavar="DIR",
                       help="the results folder or root the --site report is built from (default: --results)")
    scan = commands.add_parser("scan", help="step-0 statistics of every MLP scenario over depths 1-64 and 10 seeds")
    probe = commands.add_parser("probe", help="your Keras model's forward and backward signal per layer at "
                                "initialisation, over several seeds (no training)")
    probe.add_argument("model", help="a saved .keras or .h5 model, or module:function (or file.py:function) that "
                                     "builds one")
    probe.add_argument("--data", help="an .npz holding x (or arrays named after the model's inputs) and y, or a "
                                      "folder of IDX files (default: generated inputs of the model's input shape)")
    probe.add_argument("--seeds", type=one_integer("--seeds", 1, 1000), default=5,
                       help="re-initialisations of the weights (default 5)")
    probe.add_argument("--batch", type=one_integer("--batch", 1, 65536), default=256, help="batch size (default 256)")
    probe.add_argument("--verbose", action="store_true", help="also show TensorFlow's and Keras's own messages")
    for sub in (run, sweep):
        add_common(sub)
    add_common(scan, training=False)
    return parser


def print_catalogue() -> None:
    print("scenarios (* = the article's four):")
    for s in CATALOGUE:
        settings = {k: v for k, v in asdict(s).items() if k not in ("name", "summary", "article") and v is not None}
        print(f"  {s.name:<23}{'*' if s.article else ' '} {s.summary}")
        print(f"  {'':<24} " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print("profiles:")
    for p in PROFILES.values():
        print(f"  {p.name:<8} {p.summary}")
        print(f"  {'':<8} dataset={p.dataset}, epochs={p.epochs}, train_samples={p.train_samples}, "
              f"seeds={list(p.seeds)}, extra MLP depths={list(p.mlp_depths)}, log_every={p.log_every}")
        print(f"  {'':<8} recurrent: extra lengths T={list(p.sequence_lengths)} "
              f"({', '.join(p.sequence_cells) or 'every recurrent scenario'}), steps={p.sequence_steps}, "
              f"recall sequences={p.sequence_samples}")


def default_results(profile: str) -> Path:
    """results/<profile>/tf-<version>: each profile in its own folder, so no site pools two of them."""
    from bench import provenance

    return Path("results") / profile / f"tf-{provenance.versions()['tf_version']}"


def prepare(args, profile, train_samples: int | None):
    """(device, dataset, results folder) of a command; refuses a folder of foreign or old files before adding
    to it, then says which dataset it uses."""
    from bench import claims, data, live, provenance, store

    device = provenance.resolve_device(args.device)
    dataset = data.load(args.dataset or profile.dataset, args.data_dir, train_samples, profile.test_samples)
    results = args.results or default_results(profile.name)
    store.check_folder(results, provenance.code(), (dataset.name, data.RECALL), profile.name)
    live.remove_dead(results)
    claims.remove_stale(results)
    print(f"dataset {dataset.name}: {dataset.source} ({len(dataset.y_train)} train / {len(dataset.y_test)} test)"
          + (f" [{dataset.note}]" if dataset.note else ""), file=sys.stderr)
    return device, dataset, results


def train_command(args) -> None:
    """run and sweep: load data once, then train what is missing."""
    from bench import jobs, sweep, train  # TensorFlow loads only here

    train.configure_threads(args.xla == "on")
    profile = PROFILES[args.profile]
    if args.epochs:  # every cell trains that many epochs, the long ones too
        profile = replace(profile, epochs=args.epochs, long_cells=())
    if args.command == "run":
        runs = sweep.grid(profile, [SCENARIOS[args.scenario]], args.depth, args.seed)
    elif args.control:
        runs = sweep.shard(stored_grid(args, profile), *args.shard)
    else:
        scenarios = [SCENARIOS[n] for n in args.scenarios] if args.scenarios else list(CATALOGUE)
        runs = sweep.shard(sweep.grid(profile, scenarios, args.depths, args.seeds), *args.shard)
    whole = any(run.train_samples is None for run in runs)  # a long cell trains on the whole set
    device, dataset, results = prepare(args, profile, None if whole else profile.train_samples)
    if getattr(args, "control", None):
        runs, results = control_runs(runs, dataset, results, device, args.control)
    print(f"{len(runs)} runs on {device} into {results}/", file=sys.stderr)
    site = live_site(args, results)
    if getattr(args, "scheduler", None) or getattr(args, "workers", None):
        from bench import cluster

        request = cluster.DataRequest(dataset.name, args.data_dir, None if whole else profile.train_samples,
                                      profile.test_samples, cluster.fingerprint(dataset))
        with cluster.scheduler(args.scheduler, args.workers) as address:
            tally = cluster.sweep_on_cluster(address, runs, dataset, request, results, device, args.xla == "on",
                                             site)
    else:
        others = jobs.start(args, args.jobs - 1) if getattr(args, "jobs", 1) > 1 else None
        tally = sweep.sweep(runs, dataset, results, device, args.xla == "on", site, others)
    print(f"{tally}; results in {results}/", file=sys.stderr)


def check_site(args) -> None:
    """--site: refused before training when it lies inside the results it is built from, or holds them."""
    if getattr(args, "site_results", None) and not args.site:
        raise UserError("--site-results: names what --site is built from; add --site DIR")
    if not getattr(args, "site", None):
        return
    source = args.site_results or args.results or Path("results") / args.profile
    site, inside = args.site.resolve(), Path(source).resolve()
    if site == inside or site.is_relative_to(inside) or inside.is_relative_to(site):
        raise UserError(f"--site {args.site}: the site and the results it is built from ({source}) must be apart; "
                        "choose a folder outside them (e.g. site)")


def live_site(args, results: Path):
    """The site --site asks the sweep to keep built (bench.live.Site), or None."""
    if not getattr(args, "site", None):
        return None
    from bench import live

    print(f"the report is built into {args.site.resolve() / 'index.html'} as runs are stored, and at the end",
          file=sys.stderr)
    return live.Site(Path(args.site_results or results), args.site, waited=args.jobs > 1)


def stored_grid(args, profile) -> list:
    """--control: the runs stored in the results folder (narrowed by --scenarios, --depths, --seeds), in grid order."""
    from bench import store, train

    wanted = {"scenario": args.scenarios, "depth": args.depths, "seed": args.seeds}
    runs = {(m["scenario"], m["depth"], m["seed"])
            for m in map(store.read_metadata, store.run_files(args.results or default_results(profile.name)))
            if m["scenario"] in SCENARIOS and all(not v or m[k] in v for k, v in wanted.items())}
    order = list(SCENARIOS)
    return [train.RunSpec(SCENARIOS[name], depth, seed, profile)
            for name, depth, seed in sorted(runs, key=lambda run: (order.index(run[0]), *run[1:]))]


def control_runs(runs: list, dataset, results: Path, device: str, control: str) -> tuple[list, Path]:
    """The control runs of the grid's stored runs, and the folder they go to (refused like any results folder)."""
    from bench import claims, live, provenance, store, sweep
    from bench import data as datasets

    controlled = sweep.controls_of(runs, dataset, results, provenance.device_kind(device), control)
    if not controlled:
        raise UserError(f"--control: {results}/ holds no run that these options reproduce; give the options its "
                        "sweep was run with (--profile, --dataset, --epochs)")
    if len(controlled) < len(runs):
        print(f"--control: {len(runs) - len(controlled)} stored runs were trained with other options "
              "(--epochs, --dataset) and are left out", file=sys.stderr)
    folder = results / store.CONTROLS_FOLDER
    store.check_folder(folder, provenance.code(), (dataset.name, datasets.RECALL))
    live.remove_dead(folder)
    claims.remove_stale(folder)
    return controlled, folder


def control_defaults(args) -> None:
    """--control with --results: the profile and dataset not given are those of the folder's runs."""
    if not getattr(args, "control", None) or not args.results:
        return
    from bench import store

    files = store.run_files(args.results)
    if not files:
        raise UserError(f"--control: {args.results}/ holds no result files to control; sweep them first")
    run = store.read_metadata(files[0])
    args.profile, args.dataset = args.profile or run["profile"], args.dataset or run["dataset"]


def scan_command(args) -> None:
    """scan: measure the depth scan into <results>/scan/ unless it is there already."""
    from bench import scan  # TensorFlow's default thread pools: the scan's matmuls are large

    profile = PROFILES[args.profile]
    device, dataset, results = prepare(args, profile, profile.train_samples)
    path, measured = scan.scan(dataset, results, device, width=profile.width)
    print(f"depth scan {'measured' if measured else 'already stored'}: {path}", file=sys.stderr)


def probe_command(args) -> None:
    from bench import probe

    print(probe.report(probe.profile(args.model, args.data, args.seeds, args.batch)))


def import_tensorflow() -> None:
    """TensorFlow is an extra of the wheel (cpu or gpu): without it, say what to install."""
    try:
        with held_signals():  # a stop while it loads is raised once it has (a module cut in half can crash the exit)
            console.import_tensorflow()
    except ModuleNotFoundError as err:
        if err.name != "tensorflow":
            raise
        raise UserError("TensorFlow is not installed, and training needs it: pip install 'gradbench[cpu]' (or "
                        "'gradbench[gpu]' for CUDA), or pip install tensorflow-cpu") from None


def main(argv: list[str] | None = None) -> int:
    stop_on_signals()
    try:
        args = make_parser().parse_args(argv)
        if args.command == "list":
            print_catalogue()
            return 0
        control_defaults(args)
        if args.command != "probe":
            args.profile = args.profile or "quick"
        check_site(args)
        console.configure(args.verbose)
        import_tensorflow()
        if args.command == "probe":
            probe_command(args)
        elif args.command == "scan":
            scan_command(args)
        else:
            train_command(args)
    except UserError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted; finished runs are stored, run the same command again to resume",
              file=sys.stderr)
        return interrupted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
