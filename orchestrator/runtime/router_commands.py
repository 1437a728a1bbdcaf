"""`orchestrator router ...`: rebuild the learned router's artifact and measure it."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.router_training.data import DEFAULT_DIR, load_training_set, training_files


@click.group()
def router() -> None:
    """Train and evaluate the learned router (orchestrator/core/routing_model)."""


@router.command("train")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_DIR,
              show_default=True, help="the routing data: train/*.jsonl.gz and the MMLU file")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to write the artifact [default: the one shipped in the package]")
@click.option("--no-mmlu", is_flag=True, help="train on train/*.jsonl.gz only (your own logged outcomes, say)")
def train_command(data_dir: Path, out: Path | None, no_mmlu: bool) -> None:
    """Rebuild the quality model from the data, with a fixed seed (same data, same model)."""
    from orchestrator.core.routing_model.model import shipped_directory, write_artifact
    from orchestrator.router_training.training import train

    files = training_files(data_dir)
    if not files:
        raise click.ClickException(f"no training files in {data_dir / 'train'}")
    samples = load_training_set(data_dir, files, with_mmlu=not no_mmlu)
    arrays, metadata = train(samples, files if no_mmlu else [*files, data_dir / "mmlu_gpt4_vs_mixtral.jsonl.gz"])
    target = out or shipped_directory()
    write_artifact(target, arrays, metadata)
    click.echo(f"trained on {len(samples)} prompts {metadata['trained_on']}; penalty {metadata['penalty']} "
               f"(CV mean APGR by penalty {metadata['cv_mean_apgr_by_penalty']}); written to {target}")


@router.command("eval")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_DIR,
              show_default=True)
def eval_command(data_dir: Path) -> None:
    """APGR and CPT(50%) on MT-Bench, held-out MMLU and cross-validated training files."""
    from orchestrator.router_training.report import markdown, report

    rows, notes = report(data_dir)
    click.echo(markdown(rows))
    click.echo("\n".join(["", *notes]))


@router.command("bars")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_DIR,
              show_default=True)
def bars_command(data_dir: Path) -> None:
    """Derive the strategies' bars (LOW_BAR_LOSS, QUALITY_SCALE) from the training data's held-out
    predictions (orchestrator/router_training/bars.py states the rule); MT-Bench is not read."""
    from orchestrator.core.routing_model.model import load_shipped
    from orchestrator.core.strategies import LOW_BAR_LOSS, QUALITY_SCALE
    from orchestrator.router_training.bars import derive, held_out_predictions, summary
    from orchestrator.router_training.training import features, reading_of, word_vectors

    samples = load_training_set(data_dir, training_files(data_dir))
    readings = [reading_of(s.turns) for s in samples]
    f = features(word_vectors(readings), readings)
    metadata = load_shipped().metadata
    held = held_out_predictions(f, samples, float(metadata["penalty"]), float(metadata["length_weight"]))
    click.echo("\n".join(summary(derive(samples, held), (LOW_BAR_LOSS, QUALITY_SCALE))))
