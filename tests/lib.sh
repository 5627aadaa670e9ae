# shellcheck shell=bash
# Scaffolding shared by the shell tests (source it after `set -euo pipefail`):
#   $work                    a scratch directory, removed on exit
#   pids+=($!)               after starting a background process: it is killed on exit (by PID)
#   check NAME WANT GOT      counts a pass, or a failure printed with both values
#   wait_for FILE PATTERN    waits up to 10 s for PATTERN in FILE, else prints FILE and exits 1
#   listening_uri FILE       waits for the "listening on URI" line in FILE and prints URI
#   finish LABEL             prints "LABEL: N passed, M failed"; fails when anything failed
#   checks_from FILE [PREFIX] each "ok NAME" / "FAIL NAME: detail" line of a driver's output
#                            becomes a check (named PREFIX NAME)
work=$(mktemp -d)
pids=()
passes=0
fails=0
rs_test_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap rs_test_cleanup EXIT
check() {
  if [ "$2" == "$3" ]; then passes=$((passes + 1)); else
    fails=$((fails + 1)); printf 'FAIL %s\n  want: %.400q\n  got:  %.400q\n' "$1" "$2" "$3"; fi
}
wait_for() {
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
listening_uri() {
  wait_for "$1" '^listening on '
  awk '/^listening on /{print $3; exit}' "$1"
}
checks_from() {
  local tag rest
  while read -r tag rest; do
    case $tag in
      ok) check "${2:-}$rest" ok ok ;;
      FAIL) check "${2:-}${rest%%:*}" ok "$rest" ;;
    esac
  done < "$1"
}
finish() {
  echo "$1: $passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}
