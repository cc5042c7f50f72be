"""key: role key files derived from the master key, and the Ed25519 signing key.

None of these opens the database: the key files are the authority (whoever holds the master
key can derive every role file by hand), and a signing key is made on the host that keeps it.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import KeyFileError
from ..i18n import N_, _, term
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import App, edge, examples, message, runtime
from .options import OutputOpt

key_app = App(help=N_("Role key files and the signing key."), no_args_is_help=True,
              epilog=examples("cardctl key export --role auditor auditor.key", "cardctl key show"))


class KeyRole(str, Enum):
    staff = "staff"
    auditor = "auditor"


def register(app: typer.Typer) -> None:
    app.add_typer(key_app, name="key")


@key_app.command("export", epilog=examples(
    "cardctl --key-file /secure/cardctl.key key export --role staff counter-07.key",
    "cardctl --key-file /secure/cardctl.key key export --role auditor auditor.key --public-key 3b6a27bc…"))
@edge
def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help=N_("The new role key file (never replaces one)."), show_default=False)],
    role: Annotated[KeyRole, typer.Option("--role", help=N_("staff (counter PCs) or auditor."),
                                          case_sensitive=False, show_default=False)],
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help=N_("The public signing key to put in the file (64 hex digits, or a file holding "
                                "them); default: that of the signing key beside the key file."),
        show_default=False)] = None,
) -> None:
    """Write a role key file derived from the master key file (--key-file), mode 0600.

    A staff file holds what PIN and ID checks need; an auditor file only what reading and
    verifying the trail needs: it cannot compute a PIN or ID hash. Both carry the database's
    fingerprint and the public signing key, to check signatures with.
    """
    from ..keys import load_keys, write_role_file
    from ..storage.signing import key_id, parse_public_key, signer_if_present

    settings = runtime(ctx).settings()
    keys = load_keys(settings.key_file)
    if keys.master is None:
        raise KeyFileError(_("key file {path} is a role key file ({role}); role key files are made from the "
                             "master key file").format(path=settings.key_file, role=term(keys.role, "role")))
    if public_key:
        public = parse_public_key(public_key)
    else:
        signer = signer_if_present(settings)
        public = signer.public if signer else None
    write_role_file(Path(file), keys, role.value, public)
    message(_("{role} key file {path} written (mode 0600), fingerprint {fingerprint}").format(
        role=term(role.value, "role"), path=file, fingerprint=keys.fingerprint))
    if public is None:
        message(_("it carries no public signing key, so it cannot check signatures; give --public-key, or "
                  "create the signing key first (cardctl key new-signing)"))
    else:
        message(_("public signing key {key}").format(key=key_id(public)))


@key_app.command("show", epilog=examples("cardctl key show", "cardctl key show --public > signing.pub"))
@edge
def show(
    ctx: typer.Context,
    public: Annotated[bool, typer.Option("--public", help=N_("Print only the public signing key (64 hex digits)."))]
    = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show what the key file is (master, staff or auditor), its fingerprint and the public signing key.

    Prints no secret. The public key comes from the key file, or from the signing key beside it.
    """
    from ..keys import load_keys
    from ..storage.signing import key_id, signer_if_present, signing_key_path

    settings = runtime(ctx).settings()
    keys = load_keys(settings.key_file)
    signer = signer_if_present(settings)
    public_raw = keys.public_key or (signer.public if signer else None)
    if public:
        if public_raw is None:
            raise KeyFileError(_("no public signing key: key file {path} carries none and there is no signing key "
                                 "at {signing}").format(path=settings.key_file, signing=signing_key_path(settings)))
        typer.echo(public_raw.hex())
        return
    record = {"key_file": str(settings.key_file), "role": keys.role, "fingerprint": keys.fingerprint,
              "checks_pins_and_ids": keys.checks_identity,
              "public_key": public_raw.hex() if public_raw else None,
              "public_key_id": key_id(public_raw) if public_raw else None,
              "signing_key": signer.path if signer else None}
    emit([record], output, table=lambda rows: result_table(rows, _("Key file")))


@key_app.command("new-signing", epilog=examples("cardctl key new-signing",
                                                 "cardctl key new-signing /etc/cardctl/cardctl.signing.key"))
@edge
def new_signing(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(
        help=N_("Where to create it; default CARDCTL_SIGNING_KEY, or beside the key file."),
        show_default=False)] = None,
) -> None:
    """Create an Ed25519 signing key (mode 0600) on the host that will keep it; print its public key.

    The signing key is not derived from the master key. Keep it on the signing host only;
    put its public key into the role key files (cardctl key export --public-key).
    """
    from ..storage.signing import create_signing_key, key_id, signing_key_path

    path = Path(file) if file else signing_key_path(runtime(ctx).settings())
    public = create_signing_key(path)
    if public is None:
        raise KeyFileError(_("{path} exists; a key file is never replaced").format(path=path))
    typer.echo(public.hex())
    message(_("signing key {path} created (mode 0600; keep it on the signing host only), public key {key}").format(
        path=path, key=key_id(public)))
