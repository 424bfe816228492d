"""`mlops observability rules --out FILE [--model NAME] [--namespace NS]`: the Prometheus rules file.

The rules of every catalogue model, or of one, as a standard rules file (`promtool check rules`
reads it; Prometheus loads it with `rule_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import OnlyModelOption

app = typer.Typer(no_args_is_help=True, help="Service-level alerts: Prometheus rules derived from the catalogue.")


@app.command("rules")
def rules(
    out: Annotated[Path, typer.Option("--out", help="Write the rules file (YAML) here.")],
    model: OnlyModelOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Select only series of this Kubernetes namespace.")
    ] = None,
) -> None:
    """Write the recording and alerting rules of the catalogue's models (one group per model)."""
    from observability.rules import catalogue_rules, rules_yaml
    from workloads import catalogue

    try:
        entries = [catalogue.get(model)] if model else list(catalogue.CATALOGUE.values())
    except catalogue.UnknownModelError as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    document = catalogue_rules(entries, namespace)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rules_yaml(document))
    count = sum(len(group["rules"]) for group in document["groups"])
    typer.echo(f"{out}: {count} rules in {len(document['groups'])} group(s)")
