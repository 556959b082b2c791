"""The ``touchmodel`` command line. Thin: parse flags, call the core, render.

User errors (``TouchmodelError``) become one message on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from touchmodel.cli import fit, operations, planning, server, whatif
from touchmodel.cli._common import CliApp, parse_as_of, user_errors
from touchmodel.engine import Engine
from touchmodel.errors import ModelFileError, TouchmodelError, did_you_mean
from touchmodel.model.loader import DEFAULT_PRESET, PRESETS, load_model, preset_yaml
from touchmodel.spark import engine_options

app = CliApp(
    name="touchmodel",
    help="Run a customer-success touch model on your own data.",
    no_args_is_help=True,
    add_completion=False,
)
model_app = CliApp(help="Show presets and check touch-model files.", no_args_is_help=True)
app.add_typer(model_app, name="model")

console = Console()
err_console = Console(stderr=True)


@contextmanager
def steps() -> Iterator[Callable[[str], None]]:
    """A spinner line that shows the current step of a long run."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("starting")
        yield lambda msg: progress.update(task, description=msg)


ModelOpt = Annotated[
    str,
    typer.Option("--model", "-m", help=f"Preset ({', '.join(PRESETS)}) or touch-model YAML file."),
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Decide as of this date (YYYY-MM-DD). Default: today.")
]


WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: the current one or a parent)."
    ),
]


@app.command()
@user_errors
def run(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="Folder of CSV/Parquet files, one per table, or a database URL "
            "(duckdb:///file.db, postgresql://user@host/db; docs/warehouse.md) (default: workspace's).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for decisions and reports (default: out, or the workspace's runs/DATE).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help=f"Preset ({', '.join(PRESETS)}) or model file (default: the workspace's, else {DEFAULT_PRESET}).",
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Mapping file: column renames, value maps, derived fields."),
    ] = None,
    as_of: AsOfOpt = None,
    max_reject_rate: Annotated[
        float | None,
        typer.Option(
            help="Fail when more than this share of a table's rows is rejected (default 0.05)."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    no_state: Annotated[
        bool, typer.Option("--no-state", help="Only write decision files, even in a workspace.")
    ] = False,
    allow_missing_accounts: Annotated[
        bool,
        typer.Option(
            "--allow-missing-accounts",
            help="Accept data lacking many accounts of the last run (their work is closed).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run even for a date before the workspace's last run, or far after the newest data.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what a workspace run would change (items, touchpoints, messages); "
            "write nothing.",
        ),
    ] = False,
    engine_name: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where the decision query runs: duckdb (default) or spark (docs/spark.md).",
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option("--spark-master", help="Spark master URL (default: local[*])."),
    ] = None,
    spark_staging: Annotated[
        Path | None,
        typer.Option(
            "--spark-staging",
            help="Folder the Spark executors can read (default: a local temp one).",
        ),
    ] = None,
) -> None:
    """Decide for every account in a data folder and write decisions.csv / decisions.parquet.

    Inside a workspace (see `touchmodel init`) the run is also recorded in its
    state: history, work items, books, touchpoints and messages. A date before
    the last run, or far after the newest data, is refused unless --force; the
    latest run can be taken back with `touchmodel runs undo`.
    """
    from touchmodel.cli.render import render_summary
    from touchmodel.report import summarize
    from touchmodel.workspace import find_workspace

    when = parse_as_of(as_of)
    if max_reject_rate is not None and not 0 <= max_reject_rate <= 1:
        raise TouchmodelError(
            f"--max-reject-rate: value {max_reject_rate} -- expected a share from 0 to 1"
        )
    ws = None if no_state else find_workspace(workspace)
    if dry_run and ws is None:
        raise TouchmodelError(
            "--dry-run: shows what a run would change in a workspace; run it inside one "
            "(without --no-state)"
        )
    if ws is not None:
        from touchmodel.cli.ops_render import render_day
        from touchmodel.ops.daily import run_day

        with steps() as step:
            day = run_day(
                ws, as_of=when, data=data, mapping=mapping, model=model, out=out,
                max_reject_rate=max_reject_rate, progress=step,
                allow_missing_accounts=allow_missing_accounts, force=force, dry_run=dry_run,
                engine_flags=(engine_name, spark_master, spark_staging),
            )  # fmt: skip
        assert day.model is not None
        render_summary(console, summarize(day.model, day.result), day.result)
        render_day(console, day)
        return
    if data is None:
        raise TouchmodelError("--data: required outside a workspace (or run `touchmodel init DIR`)")
    spark = engine_options(engine_name, spark_master, spark_staging)
    engine = Engine.from_spec(model or DEFAULT_PRESET)
    with steps() as step:
        result = engine.run(
            data,
            as_of=when,
            mapping=mapping,
            out=out or Path("out"),
            max_reject_rate=max_reject_rate,
            progress=step,
            spark=spark,
        )
    render_summary(console, summarize(engine.model, result), result)


@app.command()
@user_errors
def demo(
    accounts: Annotated[
        int, typer.Option("--accounts", "-n", min=1, help="Number of accounts to generate.")
    ] = 2000,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo data and outputs go.")
    ] = Path("demo-out"),
    model: ModelOpt = DEFAULT_PRESET,
    as_of: AsOfOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 7,
    history: Annotated[
        int,
        typer.Option(
            "--history",
            min=0,
            help="Months of history with planted churn, for backtest and calibrate (0: one day's data).",
        ),
    ] = 0,
) -> None:
    """Generate a realistic demo customer base, run the touch model on it, print a summary."""
    from touchmodel.cli.render import render_summary
    from touchmodel.demo.generator import generate
    from touchmodel.report import summarize

    when = parse_as_of(as_of)
    engine = Engine.from_spec(model)
    data_dir = folder / "data"
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        tasks: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"generating {name}", total=total)
            progress.update(tasks[name], completed=done, total=total)

        if history:
            from touchmodel.demo.history import generate_history

            gen = generate_history(
                data_dir,
                accounts=accounts,
                as_of=when,
                months=history,
                seed=seed,
                progress=on_progress,
            )
        else:
            gen = generate(data_dir, accounts=accounts, as_of=when, seed=seed, progress=on_progress)
    rows = ", ".join(f"{n:,} {t}" for t, n in gen.rows.items())
    console.print(f"Generated demo data in {data_dir}: {rows}")
    with steps() as step:
        result = engine.run(data_dir, as_of=when, out=folder / "out", progress=step)
    render_summary(console, summarize(engine.model, result), result)


@model_app.command("show")
@user_errors
def model_show(
    preset: Annotated[str, typer.Argument(help=f"One of: {', '.join(PRESETS)}.")] = DEFAULT_PRESET,
) -> None:
    """Print a preset as YAML, to start your own touch-model file."""
    if preset not in PRESETS:
        raise TouchmodelError(
            f"preset: value {preset!r}{did_you_mean(preset, PRESETS)} -- expected one of "
            f"{', '.join(PRESETS)}"
        )
    typer.echo(preset_yaml(preset), nl=False)


@model_app.command("signals")
@user_errors
def model_signals(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Also list this model's own signals and extra columns."),
    ] = None,
) -> None:
    """List every name a rule may use: accounts columns, signals, decision values, functions."""
    from rich.table import Table

    from touchmodel.expr import BUILTIN_FUNCTIONS
    from touchmodel.signals.catalog import ACCOUNT_TYPES, BUILTIN, DECISION_NAMES

    table = Table(title="Names for rules (when:), custom signals (expr:) and health measures")
    # Names are what users copy into rules: never broken across lines.
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    for col in ("needs", "meaning"):
        table.add_column(col, overflow="fold")
    for name, typ in ACCOUNT_TYPES.items():
        table.add_row(name, typ, "accounts", "accounts column (docs/data-contract.md)")
    for info in BUILTIN:
        needs = info.table + "".join(f", accounts.{c}" for c in info.columns)
        table.add_row(info.name, info.type, needs, info.description)
    if model is not None:
        from touchmodel.model.schema import EventSignal, TableSignal

        m = load_model(model)
        for name, typ in m.extra_columns.items():
            table.add_row(name, typ, "accounts", "extra accounts column (extra_columns)")
        for sig in m.signals:
            if isinstance(sig, TableSignal):
                window = f"last {sig.window_days} days" if sig.window_days else "all rows"
                what = f"{sig.aggregate}({sig.column or ''}) over {window}"
                where = f" where {sig.where}" if sig.where else ""
                needs = sig.table + (f".{sig.column}" if sig.column else "")
                table.add_row(sig.name, "number", needs, (sig.description or what) + where)
            elif isinstance(sig, EventSignal):
                desc = f"{sig.aggregate} of '{sig.events}' events in {sig.window_days} days"
                table.add_row(sig.name, "number", "usage_events", sig.description or desc)
            else:
                table.add_row(sig.name, "", "(signals)", sig.description or sig.expr)
    for name, typ in DECISION_NAMES.items():
        table.add_row(name, typ, "(decision)", "usable in triggers, overrides and routes only")
    table.add_row("as_of", "date", "", "the date decided for")
    console.print(table)
    console.print(
        "Functions: " + ", ".join(sorted(BUILTIN_FUNCTIONS)) + "; in lifecycle overrides also "
        "fired('risk.*'). Operators: and or not, < <= > >= == !=, + - * / // %, "
        "x if cond else y, x in ['a', 'b']. Extra accounts columns: declare them under "
        "extra_columns with their type.",
        soft_wrap=True,
    )


@model_app.command("check")
@user_errors
def model_check(
    file: Annotated[str, typer.Argument(help="A touch-model YAML file, or a preset name.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", "-d", help="Also check how the model fits this data folder (diagnostics)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Mapping file for --data.")
    ] = None,
    as_of: AsOfOpt = None,
    team: Annotated[
        Path | None,
        typer.Option("--team", help="Team file: set the at-risk work against its CSMs."),
    ] = None,
) -> None:
    """Validate a touch-model file: structure, bands, weights, names, types and routes.

    With --data, also decide on that data (no files written) and list what
    fits it badly: triggers that cannot fire or fire too often or together,
    health measures without data or spread, the at-risk load.
    """
    try:
        m = load_model(file)
    except ModelFileError as exc:
        # Listing problems is this command's job: one per line, not folded.
        err_console.print(
            f"[red]error:[/red] {exc.file}: {len(exc.problems)} problem(s)", soft_wrap=True
        )
        for problem in exc.problems:
            err_console.print(f"  - {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(
        f"{file}: OK - model '{m.name}', {len(m.tiers)} tiers, {len(m.health.measures)} health measures, "
        f"{len(m.triggers)} triggers, {len(m.routes)} routes",
        soft_wrap=True,
    )
    if data is not None:
        _check_fit(Engine(m, file), data, mapping, parse_as_of(as_of), team)


def _check_fit(
    engine: Engine, data: Path, mapping: Path | None, when: dt.date, team: Path | None
) -> None:
    """`model check --data`: decide on the data without writing, print the diagnostics."""
    from touchmodel.cli.render import render_diagnostics
    from touchmodel.plan.team import load_team

    crew = None if team is None else load_team(team, engine.model)[0]
    with steps() as step:
        result = engine.run(data, as_of=when, mapping=mapping, progress=step, team=crew)
    assert result.diagnostics is not None
    console.print(f"Data fit on {data} as of {when}:", soft_wrap=True)
    render_diagnostics(console, result.diagnostics)


planning.register(app)
operations.register(app)
server.register(app)
fit.register(app)
whatif.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
