"""`edgewise keys ...` and `edgewise repo ...`: signing keys and the TUF repository of bundles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from securesystemslib.signer import Key

F = Callable[..., Any]


def keys_option(command: F) -> F:
    return click.option(
        "--keys",
        "key_dirs",
        multiple=True,
        default=["keys"],
        show_default=True,
        envvar="EDGEWISE_KEYS",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Key directory to sign with (repeatable; env EDGEWISE_KEYS).",
    )(command)


def threshold_option(command: F) -> F:
    return click.option(
        "--threshold",
        default=2,
        show_default=True,
        type=click.IntRange(min=1),
        help="Root keys that must sign each new root.",
    )(command)


def _repository(directory: Path, key_dirs: tuple[Path, ...]) -> Any:
    from ..trust import DirectoryRepository, KeyRing

    return DirectoryRepository(directory, KeyRing(list(key_dirs)))


@click.group("keys")
def keys_group() -> None:
    """Ed25519 signing keys (private files 0600; encrypted when EDGEWISE_KEY_PASSPHRASE is set).

    \b
    Example:
      edgewise keys init keys/
    """


@keys_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--root-keys", default=3, show_default=True, type=click.IntRange(min=1), help="Root keys."
)
def keys_init_command(directory: Path, root_keys: int) -> None:
    """Make the keys of a repository in DIRECTORY: root keys, targets, snapshot, timestamp and
    operator (docs/trust.md says where each should live).

    \b
    Example:
      EDGEWISE_KEY_PASSPHRASE=... edgewise keys init keys/ --root-keys 3
    """
    from ..trust.keys import PASSPHRASE_ENV, ROLE_KEYS, init_keys, passphrase

    keys = init_keys(directory, root_keys)
    for name, key in keys.items():
        signs = ROLE_KEYS.get(name, "new root metadata (which keys sign what)")
        click.echo(f"  {name:<10} {key.keyid[:12]}  signs {signs}")
    encrypted = f"encrypted with ${PASSPHRASE_ENV}" if passphrase() else "not encrypted"
    click.echo(f"wrote {len(keys)} keys to {directory} (private .key files 0600, {encrypted})")


@keys_group.command("add")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("name")
def keys_add_command(directory: Path, name: str) -> None:
    """Make one key NAME in DIRECTORY, e.g. for a publisher given a delegation.

    \b
    Example:
      edgewise keys add publisher-keys/ credit-team
    """
    from ..trust.keys import PUBLIC_SUFFIX, generate_key

    key = generate_key(directory, name)
    click.echo(f"wrote {name} ({key.keyid[:12]}); share {directory / (name + PUBLIC_SUFFIX)}")


@click.group("repo")
def repo_group() -> None:
    """A TUF repository of bundles: signed metadata that clients verify bundles against.

    \b
    Example:
      edgewise repo init repo/ --keys keys/
      edgewise repo add repo/ credit-risk-2.ewb --keys keys/
    """


@repo_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@keys_option
@threshold_option
def repo_init_command(directory: Path, key_dirs: tuple[Path, ...], threshold: int) -> None:
    """Create a repository in DIRECTORY signed with the keys from `edgewise keys init`.

    \b
    Example:
      edgewise repo init repo/ --keys keys/ --threshold 2
    """
    from ..trust.keys import ROLE_KEYS

    repository = _repository(directory, key_dirs)
    public = repository.keys.public_keys()
    operators = [public["operator"]] if "operator" in public else []
    root = repository.init(root_threshold=threshold, operator_keys=operators)
    roles = ", ".join(role for role in ROLE_KEYS if role != "operator")
    click.echo(
        f"created {directory}: root version {root.version} "
        f"({threshold} of {len(root.roles['root'].keyids)} root keys), {roles}, "
        f"{len(operators)} operator key(s)"
    )
    click.echo(f"pin on every client: {directory / 'metadata' / '1.root.json'}")


@repo_group.command("add")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@keys_option
@click.option("--role", default="targets", show_default=True, help="Role that signs it.")
@click.option("--hardware", help="Hardware class the bundle is for (signed with it).")
def repo_add_command(
    directory: Path, bundle: Path, key_dirs: tuple[Path, ...], role: str, hardware: str | None
) -> None:
    """Sign BUNDLE into the repository: a target with its length and hashes, then new
    targets, snapshot and timestamp metadata.

    \b
    Example:
      edgewise repo add repo/ credit-risk-2.ewb --keys keys/ --hardware arm64-gpu
    """
    repository = _repository(directory, key_dirs)
    target = repository.add_bundle(bundle, role=role, hardware=hardware)
    info = repository.targets(role).targets[target.path]
    click.echo(
        f"signed {target.path} ({target.describe()}) as a target of {role}: "
        f"{info.length:,} bytes, sha256 {info.hashes['sha256'][:16]}..."
    )
    click.echo(
        f"snapshot version {repository.snapshot().version}, "
        f"timestamp version {repository.timestamp().version}"
    )


@repo_group.command("refresh")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@keys_option
def repo_refresh_command(directory: Path, key_dirs: tuple[Path, ...]) -> None:
    """Re-sign the timestamp, and the snapshot and targets (with their keys at hand) once half
    their lifetime is gone. Run it from cron several times a day: a timestamp lasts one day.

    \b
    Example:
      edgewise repo refresh repo/ --keys online-keys/
    """
    repository = _repository(directory, key_dirs)
    renewed = repository.refresh()
    timestamp = repository.timestamp()
    click.echo(
        f"timestamp version {timestamp.version}, expires {timestamp.expires:%Y-%m-%d %H:%M} UTC"
    )
    if renewed:
        click.echo(f"renewed: {', '.join(renewed)}")


@repo_group.command("rotate-root")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@keys_option
@click.option(
    "--new-keys",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Directory of the new keys: its root-* keys (if any) become the root keys; targets, "
    "snapshot, timestamp and operator keys found there replace the old ones.",
)
@threshold_option
def repo_rotate_root_command(
    directory: Path, key_dirs: tuple[Path, ...], new_keys: Path, threshold: int
) -> None:
    """A new root version listing the new keys, signed by a threshold of the old root keys
    (--keys) and of the new ones (--new-keys); every other role is re-signed under it.

    \b
    Example:
      edgewise keys init new-keys/
      edgewise repo rotate-root repo/ --keys keys/ --new-keys new-keys/
    """
    from ..trust import DirectoryRepository, KeyRing, operator_keys
    from ..trust.keys import ROLE_KEYS, ROOT_KEY_PREFIX

    fresh = KeyRing([new_keys]).public_keys()
    repository = DirectoryRepository(directory, KeyRing([new_keys, *key_dirs]))
    current = repository.root()
    new_root_keys: list[Key] = [
        key for name, key in fresh.items() if name.startswith(ROOT_KEY_PREFIX)
    ]
    # Without new root keys the root keys stay: a rotation of online keys only.
    root_keys = new_root_keys or [current.keys[k] for k in current.roles["root"].keyids]
    role_keys = {r: fresh[r] for r in ROLE_KEYS if r in fresh and r != "operator"}
    operators = [fresh["operator"]] if "operator" in fresh else None
    before = set(current.keys) | set(operator_keys(current))
    root = repository.rotate_root(
        root_keys, root_threshold=threshold, role_keys=role_keys, operator_keys=operators
    )
    revoked = sorted(keyid[:12] for keyid in before - set(root.keys) - set(operator_keys(root)))
    replaced = ", ".join(
        [*(["root"] if new_root_keys else []), *role_keys, *(["operator"] if operators else [])]
    )
    click.echo(f"root version {root.version}: new keys for {replaced}")
    click.echo(f"revoked: {', '.join(revoked) or 'none'}")


@repo_group.command("delegate")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("role")
@click.option(
    "--key",
    "public_key",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The publisher's public key file (NAME.pub from edgewise keys add).",
)
@click.option(
    "--paths",
    multiple=True,
    required=True,
    help="Target path pattern the role may sign, e.g. 'credit-*' (repeatable; targets are "
    "named NAME-VERSION.ewb).",
)
@keys_option
def repo_delegate_command(
    directory: Path, role: str, public_key: Path, paths: tuple[str, ...], key_dirs: tuple[Path, ...]
) -> None:
    """Let the holder of a publisher key sign, as ROLE, only the bundles matching --paths.

    \b
    Example:
      edgewise repo delegate repo/ credit-team --key credit-team.pub --paths 'credit-*'
      edgewise repo add repo/ credit-risk-2.ewb --role credit-team --keys publisher-keys/
    """
    from ..trust.keys import read_public_key

    key = read_public_key(public_key)
    _repository(directory, key_dirs).delegate(role, key, paths)
    click.echo(f"role {role} ({key.keyid[:12]}) may sign {', '.join(paths)}")
