#!/usr/bin/env bash
# Unlock a list of cards after a terminal fault, keeping one result row per card.
#   examples/batch-unlock.sh cards.txt "terminal fault T-0042 on 2026-11-20"
# At a counter, every card checked against one holder's ID number, given on stdin (never as an
# argument, which every user can read in ps), or typed at the prompt:
#   printf '%s\n' "$ID_NUMBER" | examples/batch-unlock.sh cards.txt "holder at counter" --id-stdin
# cards.txt: one card number per line (or a CSV / JSON-lines file with a card_no column).
# Exit 0 when every card was unlocked or was not locked (a lock unlock may not clear, such as arrears,
# is kept and shown in the kept column); 7 when some were not found or refused.
set -euo pipefail
list=${1:?usage: batch-unlock.sh FILE REASON [--id-stdin]}
reason=${2:?usage: batch-unlock.sh FILE REASON [--id-stdin]}
counter=("${@:3:1}")  # --id-stdin: the holder's ID number is read from this script's stdin
out="unlock-$(date +%Y%m%dT%H%M%S).csv"

cardctl unlock --from "$list" --reason "$reason" --channel counter "${counter[@]}" -o csv >"$out" && rc=0 || rc=$?
echo "results in $out" >&2
# show what needs a second look
grep -E ',(not found|refused|invalid),' "$out" >&2 || true
exit "$rc"
