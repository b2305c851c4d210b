"""`edgewise fleet rollout ...`: start, follow, pause, resume and abort staged rollouts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from ..exceptions import RolloutError
from ..fleet.api_client import ApiClient
from .fleet import _operator_signature, _table, _when, api_options
from .output import echo_json

F = Callable[..., Any]
#: How the status table groups device states.
_COLUMNS = {
    "OK": ("succeeded", "skipped"),
    "FAILED": ("failed",),
    "ACTIVE": ("sent", "installing", "rolling_back"),
    "PENDING": ("pending",),
    "ROLLED BACK": ("rolled_back",),
}


def keys_option(command: F) -> F:
    """--keys: sign the action with the operator key in a directory (like `fleet label`)."""

    @click.option(
        "--keys",
        "key_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Sign with the operator key in this directory (recorded in the audit log).",
    )
    @functools.wraps(command)
    def wrapper(key_dir: Path | None, **kwargs: Any) -> Any:
        def sign(action: str, payload: dict[str, Any]) -> dict[str, Any]:
            if key_dir is None:
                return payload
            return {**payload, "signature": _operator_signature(key_dir, action, payload)}

        return command(sign=sign, **kwargs)

    return wrapper


def bundle_reference(text: str) -> tuple[str, int]:
    """NAME:VERSION, or a .ewb file whose manifest names the bundle."""
    if text.endswith(".ewb") or Path(text).is_file():
        from ..bundle import read_manifest

        manifest = read_manifest(Path(text))
        return str(manifest["name"]), int(manifest["version"])
    name, _, version = text.rpartition(":")
    if not name or not version.isdigit():
        raise click.BadParameter(
            f"{text!r}: give NAME:VERSION (credit:3) or a bundle file (credit-3.ewb)",
            param_hint="BUNDLE",
        )
    return name, int(version)


def _path(rollout_id: int, action: str = "") -> str:
    return f"/v1/rollouts/{rollout_id}" + (f"/{action}" if action else "")


@click.group("rollout")
def rollout_group() -> None:
    """Staged rollouts that halt by themselves: waves, gates, pause, resume, abort.

    \b
    Example:
      edgewise fleet rollout start credit:3 --select 'site=berlin' --waves 1%,10%,50%,100% \\
        --max-failure-rate 5% --dwell 10m --drift-gate 'psi<0.2' --rate 100/min --auto-rollback
      edgewise fleet rollout status 1
    """


@rollout_group.command("start")
@click.argument("bundle")
@click.option("--select", "selector", default="", help="Label selector, e.g. 'site=berlin'.")
@click.option(
    "--waves",
    default="1%,10%,50%,100%",
    show_default=True,
    help="Cumulative wave sizes: percentages of the selected devices or device counts "
    "(5,50,100%); the last is 100%.",
)
@click.option(
    "--max-failure-rate",
    default="5%",
    show_default=True,
    help="Halt when more of the devices reached so far fail.",
)
@click.option(
    "--dwell",
    default="10m",
    show_default=True,
    help="How long a wave's devices run the bundle before the next wave (s, m, h; 0 allowed).",
)
@click.option(
    "--drift-gate",
    "drift_gates",
    multiple=True,
    help="METRIC<THRESHOLD over the wave's telemetry, METRIC one of psi, js, ks, "
    "wasserstein_normed, linf (repeatable).",
)
@click.option("--error-gate", help="error_rate<THRESHOLD over the wave's telemetry, e.g. 2%.")
@click.option("--rate", help="At most this many install commands per s, min or h: 100/min.")
@click.option(
    "--install-timeout",
    default="30m",
    show_default=True,
    help="A device that has not reported success this long after its command has failed.",
)
@click.option(
    "--auto-rollback",
    is_flag=True,
    help="When it halts, send the halted wave back to the bundle it ran before.",
)
@keys_option
@api_options
def start_command(
    client: ApiClient,
    as_json: bool,
    sign: Callable[[str, dict[str, Any]], dict[str, Any]],
    bundle: str,
    selector: str,
    drift_gates: tuple[str, ...],
    error_gate: str | None,
    rate: str | None,
    auto_rollback: bool,
    **sizes_and_times: str,  # --waves, --max-failure-rate, --dwell, --install-timeout
) -> None:
    """Roll BUNDLE (NAME:VERSION or a .ewb file) out to the devices the selector picks.

    \b
    Example:
      edgewise fleet rollout start dist/credit-3.ewb --select 'site=berlin' \\
        --waves 1%,10%,50%,100% --dwell 10m --drift-gate 'psi<0.2' --auto-rollback
    """
    from ..fleet.rollouts import RolloutPolicy

    name, version = bundle_reference(bundle)
    options: dict[str, Any] = {
        **sizes_and_times,
        "drift_gates": list(drift_gates),
        "error_gate": error_gate,
        "rate": rate,
        "auto_rollback": auto_rollback,
    }
    options = {key: value for key, value in options.items() if value is not None}
    try:
        RolloutPolicy.parse(**options)  # refuse a bad option here, before the network
    except RolloutError as exc:
        raise click.UsageError(str(exc)) from exc
    body = {"bundle_name": name, "bundle_version": version, "selector": selector, **options}
    rollout = client.call("POST", "/v1/rollouts", sign("rollout.start", body))
    if as_json:
        echo_json(rollout)
        return
    sizes = ", ".join(
        f"{wave['size']}: {sum(wave['device_states'].values())}" for wave in rollout["waves"]
    )
    click.echo(
        f"rollout {rollout['id']} started: {name}-{version} to "
        f"{len(rollout['devices'])} devices in {rollout['wave_count']} waves ({sizes})"
    )


@rollout_group.command("list")
@api_options
def list_command(client: ApiClient, as_json: bool) -> None:
    """List rollouts, newest first.

    \b
    Example:
      edgewise fleet rollout list --json
    """
    rollouts = client.call("GET", "/v1/rollouts")
    if as_json:
        echo_json(rollouts)
        return
    rows = [
        [
            str(r["id"]),
            f"{r['bundle_name']}-{r['bundle_version']}",
            r["state"],
            f"{r['wave']}/{r['wave_count']}",
            _counts(r["device_states"]),
            r["selector"] or "(all)",
            _when(r["created_at"]),
        ]
        for r in rollouts
    ]
    _table(["ID", "BUNDLE", "STATE", "WAVE", "DEVICES", "SELECTOR", "CREATED"], rows)


@rollout_group.command("status")
@click.argument("rollout_id", type=int)
@click.option(
    "--state", "only_state", help="List only the devices in this state: failed, pending, ..."
)
@api_options
def status_command(
    client: ApiClient, as_json: bool, rollout_id: int, only_state: str | None
) -> None:
    """Show a rollout: its policy, each wave and each device, with reasons.

    \b
    Example:
      edgewise fleet rollout status 7 --state failed
    """
    status = client.call("GET", _path(rollout_id), state=only_state or "")
    if as_json:
        echo_json(status)
        return
    policy = status["policy"]
    gates = [*policy["drift_gates"], *([policy["error_gate"]] if policy["error_gate"] else [])]
    click.echo(
        f"rollout {status['id']}: {status['bundle_name']}-{status['bundle_version']} "
        f"{status['state']}, wave {status['wave']} of {status['wave_count']}"
    )
    if status["reason"]:
        click.echo(f"reason    {status['reason']}")
    click.echo(f"selector  {status['selector'] or '(all devices)'}")
    click.echo(
        f"policy    waves {policy['waves']}, max failure rate {policy['max_failure_rate']}, "
        f"dwell {policy['dwell']}, install timeout {policy['install_timeout']}, "
        f"rate {policy['rate'] or 'unlimited'}, gates {', '.join(gates) or 'none'}, "
        f"auto-rollback {'on' if policy['auto_rollback'] else 'off'}"
    )
    click.echo(f"started   {_when(status['created_at'])} by {status['created_by']}")
    click.echo()
    _table(
        ["WAVE", "SIZE", "STATE", "DEVICES", *_COLUMNS, "REASON"],
        [
            [
                str(wave["wave"]),
                wave["size"],
                wave["state"],
                str(sum(wave["device_states"].values())),
                *(_count(wave["device_states"], states) for states in _COLUMNS.values()),
                wave["reason"] or "-",
            ]
            for wave in status["waves"]
        ],
    )
    devices = status["devices"]
    if devices:
        click.echo()
        _table(
            ["DEVICE", "WAVE", "STATE", "SENT", "REASON"],
            [
                [
                    d["device_id"],
                    str(d["wave"]),
                    d["state"],
                    _when(d["sent_at"]),
                    d["reason"] or "-",
                ]
                for d in devices
            ],
        )


def _count(states: Mapping[str, int], wanted: tuple[str, ...]) -> str:
    return str(sum(states.get(state, 0) for state in wanted))


def _counts(states: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "-"


def _operator_action(action: str, doing: str) -> click.Command:
    """pause, resume: the same request to a different path."""

    @click.argument("rollout_id", type=int)
    @keys_option
    @api_options
    def command(
        client: ApiClient,
        as_json: bool,
        sign: Callable[[str, dict[str, Any]], dict[str, Any]],
        rollout_id: int,
    ) -> None:
        signed = sign(f"rollout.{action}", {"rollout": rollout_id})
        signed.pop("rollout")
        _report(client.call("POST", _path(rollout_id, action), signed), as_json)

    command.__doc__ = f"""{doing}

    \b
    Example:
      edgewise fleet rollout {action} 7 --keys keys/
    """
    return rollout_group.command(action)(command)


_operator_action("pause", "Pause a rollout: no new commands; those out are followed to their end.")
_operator_action("resume", "Resume a paused rollout.")


@rollout_group.command("abort")
@click.argument("rollout_id", type=int)
@click.option("--rollback", is_flag=True, help="Send every device that installed it back.")
@keys_option
@api_options
def abort_command(
    client: ApiClient,
    as_json: bool,
    sign: Callable[[str, dict[str, Any]], dict[str, Any]],
    rollout_id: int,
    rollback: bool,
) -> None:
    """Stop a rollout for good (a halted one too); --rollback returns its devices.

    \b
    Example:
      edgewise fleet rollout abort 7 --rollback
    """
    signed = sign("rollout.abort", {"rollout": rollout_id, "rollback": rollback})
    signed.pop("rollout")
    _report(client.call("POST", _path(rollout_id, "abort"), signed), as_json)


def _report(rollout: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(rollout)
        return
    reason = f" ({rollout['reason']})" if rollout["reason"] else ""
    click.echo(f"rollout {rollout['id']}: {rollout['state']}{reason}")
