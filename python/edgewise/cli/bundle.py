"""`edgewise bundle verify` and `edgewise bundle inspect`, and the trust options that
`edgewise score` shares with them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..trust import VerifiedBundle

F = Callable[..., Any]


@dataclass(frozen=True)
class TrustOptions:
    """Where to verify a bundle: a repository, the pinned root, and what this client runs."""

    repo: Path | None
    root: Path | None
    state: Path | None
    name: str | None
    hardware: str | None

    @property
    def given(self) -> bool:
        return self.repo is not None or self.root is not None

    def verify(self, bundle: Path, *, record: bool = True) -> VerifiedBundle:
        if self.repo is None or self.root is None:
            raise click.UsageError("verification needs both --trust/--repo DIR and --root FILE")
        from ..trust import TrustClient

        client = TrustClient.for_directory(self.repo, self.root, self.state)
        return client.verify_file(bundle, name=self.name, hardware=self.hardware, record=record)


def trust_options(command: F) -> F:
    """--trust/--repo, --root, --state, --name, --hardware, gathered into `trust: TrustOptions`."""
    options = [
        click.option(
            "--trust",
            "--repo",
            "repo",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            help="Repository directory whose signed metadata must vouch for the bundle.",
        ),
        click.option(
            "--root",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="The pinned root.json this client trusts (copied from the repository once).",
        ),
        click.option(
            "--state",
            type=click.Path(file_okay=False, path_type=Path),
            help="This client's trusted-metadata directory, kept across runs for rollback and "
            "freeze protection [default: ~/.local/state/edgewise/trust/<root id>; env "
            "EDGEWISE_TRUST_STATE].",
        ),
        click.option("--name", help="Bundle name this client runs; another name is refused."),
        click.option(
            "--hardware",
            help="Hardware class of this client; bundles signed for another class are refused.",
        ),
    ]
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)  # carries the click parameters along with name and help
    def gather(**kwargs: Any) -> Any:
        fields = {key: kwargs.pop(key) for key in ("repo", "root", "state", "name", "hardware")}
        return command(trust=TrustOptions(**fields), **kwargs)

    return gather


@click.group("bundle")
def bundle_group() -> None:
    """Bundles: check that a signed repository vouches for one, or describe it.

    \b
    Example:
      edgewise bundle verify credit-risk-2.ewb --repo repo/ --root root.json
    """


@bundle_group.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@trust_options
def verify_command(bundle: Path, trust: TrustOptions) -> None:
    """Exit 0 only when the repository's whole signed chain, from the pinned root, vouches for
    these exact bytes of BUNDLE; otherwise exit 1 and say why.

    \b
    Example:
      edgewise bundle verify credit-risk-2.ewb --repo repo/ --root root.json --name credit-risk
    """
    verified = trust.verify(bundle)
    click.echo(f"{bundle}: trusted: {describe_trust(verified)}")


@bundle_group.command("inspect")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@trust_options
def inspect_command(bundle: Path, trust: TrustOptions) -> None:
    """Show BUNDLE's manifest and, with --repo and --root, whether it is trusted and why not.

    \b
    Example:
      edgewise bundle inspect credit-risk-2.ewb --repo repo/ --root root.json
    """
    from ..bundle import Bundle
    from ..exceptions import TrustError

    loaded = Bundle.read(bundle)
    for line in describe_manifest(loaded.manifest):
        click.echo(line)
    if not trust.given:
        click.echo("trust:    not checked (give --repo DIR --root root.json)")
        return
    try:
        # Inspecting is looking, not accepting: it leaves the record of accepted versions alone.
        verified = trust.verify(bundle, record=False)
    except TrustError as exc:
        click.echo(f"trust:    NOT TRUSTED: {exc}")
        return
    click.echo(f"trust:    trusted: {describe_trust(verified)}")


def describe_trust(verified: VerifiedBundle) -> str:
    return (
        f"signed as {verified.target.describe()}, vouched for by root version "
        f"{verified.root_version} and the current timestamp, snapshot and targets"
    )


def describe_manifest(manifest: dict[str, Any]) -> list[str]:
    names = [str(column["name"]) for column in manifest["inputs"]]
    outputs = manifest["outputs"]
    engine = manifest.get("engine", {})
    lines = [
        f"bundle:   {manifest['name']} version {manifest['version']} ({manifest['task']}), "
        f"created {manifest.get('created', 'at an unknown time')}",
        f"inputs:   {len(names)} columns: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}",
        f"outputs:  {', '.join(f'{k} {v}' for k, v in outputs.items() if k != 'task')}",
        f"engine:   {engine.get('name', '?')} (graph {engine.get('graph', '?')})",
        f"model:    {manifest.get('lineage', {}).get('estimator', 'not recorded')}",
    ]
    for member, info in sorted(manifest["files"].items()):
        lines.append(
            f"file:     {member:<18} {info['length']:>10,} bytes  sha256 {info['sha256'][:16]}"
        )
    return lines
