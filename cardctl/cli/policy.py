"""policy: per-region settings (most specific area-code prefix wins, then the default)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.roles import Role
from ..i18n import N_, _, term
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import App, edge, examples, message, runtime
from .confirm import at_terminal, confirm
from .options import ChannelOpt, OutputOpt, YesOpt

policy_app = App(help=N_("Per-region settings: attempts, lock hours, loss-report days, minor age."),
                 no_args_is_help=True,
                 epilog=examples("cardctl policy show 440305", "cardctl policy set 4403 --max-attempts 5"))


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("show", epilog=examples("cardctl policy show", "cardctl policy show 440305 -o json"))
@edge
def show(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Argument(
        help=N_("An area code or prefix ('default', 2, 4 or 6 digits, as for 'policy set'): show the policy "
                "that applies to it and where it comes from."),
        show_default=False)] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List the stored policies, or the one that applies to an area code."""
    from ..services.policies import DEFAULT_NAME, list_policies, parse_prefix, policy_for_region

    ctx_ = runtime(ctx).context(role=Role.AUDITOR)
    if region is None:
        emit((entry.record() for entry in list_policies(ctx_)), output,
             table=lambda rows: result_table(rows, _("Policies (most specific prefix wins)")))
        return
    code = parse_prefix(region) or DEFAULT_NAME  # what 'policy set' accepts, 'policy show' shows
    entry = policy_for_region(ctx_, "" if code == DEFAULT_NAME else code)
    record = entry.record()
    emit([{"area_code": code, "from": record.pop("region"), **record}], output,
         table=lambda rows: result_table(rows, _("Policy for {region}").format(region=code)))


@policy_app.command("set", epilog=examples(
    "cardctl policy set default --lock-hours 0",
    "cardctl policy set 4403 --max-attempts 5 --temp-loss-days 15",
    "cardctl policy set 4403 --escalate-after 3 --escalate-window-days 30",
    "cardctl policy set 4403 --escalate-after 0       # escalation off again"))
@edge
def set_(
    ctx: typer.Context,
    region: Annotated[str, typer.Argument(help=N_("'default', or a 2-, 4- or 6-digit area-code prefix."))],
    max_attempts: Annotated[int | None, typer.Option(
        "--max-attempts", help=N_("Wrong PINs before a lock, 1-10."))] = None,
    lock_hours: Annotated[int | None, typer.Option(
        "--lock-hours", help=N_("Hours a PIN lock lasts; 0 = until unlocked."))] = None,
    temp_loss_days: Annotated[int | None, typer.Option(
        "--temp-loss-days", help=N_("Days before a temporary loss report lapses, 1-90."))] = None,
    minor_age: Annotated[int | None, typer.Option(
        "--minor-age", help=N_("Below this age a guardian acts for the holder, 14-18."))] = None,
    default_pin: Annotated[str | None, typer.Option(
        "--default-pin", help=N_("The PIN new cards are issued with in this region; refused as a chosen PIN."))] = None,
    escalate_after: Annotated[int | None, typer.Option(
        "--escalate-after", help=N_("The Nth PIN lock of a card within the window needs a counter visit "
                                    "(identity-checked reset-pin or unlock --id-number), 1-20; 0 = off."))] = None,
    escalate_window_days: Annotated[int | None, typer.Option(
        "--escalate-window-days", help=N_("Days back the PIN locks counted for escalation reach, 1-365."))] = None,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Change settings for a region prefix (audited); a new prefix starts from what it inherits."""
    from ..errors import InvalidInput
    from ..services.policies import parse_prefix, set_policy

    changes = {name: value for name, value in (
        ("max_attempts", max_attempts), ("lock_hours", lock_hours), ("temp_loss_days", temp_loss_days),
        ("minor_age", minor_age), ("default_pin", default_pin), ("escalate_after", escalate_after),
        ("escalate_window_days", escalate_window_days)) if value is not None}
    if not changes:
        raise InvalidInput(_("name at least one setting to change (e.g. --max-attempts 5)"))
    prefix = parse_prefix(region)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    if not yes and at_terminal():
        confirm(_policy_changes(ctx_, prefix, changes), yes)
    result = set_policy(ctx_, prefix, changes)
    if output is OutputFormat.TABLE:
        shown = result.entry.record()["region"]
        done = _("policy {region} {outcome}: {changes}") if result.changes else _("policy {region} {outcome}")
        message(done.format(region=term(shown), outcome=term(result.outcome), changes=result.record()["changed"]))
        return
    emit([result.record()], output)


def _policy_changes(ctx_, prefix: str, changes: dict) -> list[str]:
    """What ``policy set`` will change, old -> new, for the question asked at a terminal."""
    from ..domain import policy as rules
    from ..services.policies import DEFAULT_NAME, list_policies

    stored = {entry.prefix: entry.policy for entry in list_policies(ctx_)}
    before = stored.get(prefix) or rules.resolve(stored, prefix)
    diff = ", ".join(f"{name} {getattr(before, name)} -> {value}" for name, value in changes.items()
                     if getattr(before, name) != value)
    if not diff:
        return []
    return [_("policy {region} will change for every card it covers: {changes}").format(
        region=term(prefix or DEFAULT_NAME), changes=diff)]
