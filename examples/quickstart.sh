#!/usr/bin/env bash
# Quick start: install cardctl into .venv, load the sample population into an
# embedded SQLite database under demo/, activate a few cards, lock some with
# wrong PINs, unlock one at the counter, and show the result as a status table.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
cardctl() { .venv/bin/cardctl "$@"; }

rm -rf demo && mkdir demo
export CARDCTL_DB=demo/cardctl.db CARDCTL_KEY_FILE=demo/cardctl.key CARDCTL_OPERATOR=demo-clerk

cardctl init
cardctl import examples/cards.csv

# The first eight holders come to the counter and set their PINs.
mapfile -t rows < <(sed -n '2,9p' examples/cards.csv)
cards=()
for i in "${!rows[@]}"; do
    IFS=, read -r card_no _name id_number _rest <<<"${rows[$i]}"
    cards+=("$card_no")
    # ID numbers go on stdin, never in arguments (every user can read those in ps): the holder's,
    # then a guardian's for a minor (the first holder stands in here), then the PIN
    guardian=() ids=("$id_number")
    if (( $(date +%Y) - ${id_number:6:4} < 18 )); then
        IFS=, read -r _ guardian_name guardian_id _rest <<<"${rows[0]}"
        guardian=(--agent-name "$guardian_name") ids+=("$guardian_id")
    fi
    printf '%s\n' "${ids[@]}" "58392$i" | cardctl activate "$card_no" --id-stdin --pin-stdin "${guardian[@]}"
done

# Four of them mistype their PIN three times at a terminal: the third failure locks the card.
for card_no in "${cards[@]:0:4}"; do
    for _ in 1 2 3; do
        printf '000000\n' | cardctl verify "$card_no" --pin-stdin --channel terminal || true
    done
done

# One holder comes back with their ID card; the clerk unlocks the card.
IFS=, read -r _card _name first_id _rest <<<"${rows[0]}"
printf '%s\n' "$first_id" | cardctl unlock "${cards[0]}" --id-stdin --reason "holder verified at counter"

# A correct PIN now works again on the unlocked card.
printf '583920\n' | cardctl verify "${cards[0]}" --pin-stdin

cardctl status "${cards[@]}"
