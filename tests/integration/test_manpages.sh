#!/usr/bin/env bash
# Every program in build/bin (examples aside) has a manual page docs/<prog>.1 that renders without
# a warning, names the version, has the usual sections, documents every long option its --help
# prints, and lists no option (in an option tag) that --help does not know; --help exits 0 and
# --version (and -v where --help offers it) prints a line with RS_VERSION_STRING and exits 0.
# Needs groff (Debian groff-base): a page that cannot be checked fails the test.
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
src=${RS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$(dirname "$0")/../lib.sh"
ok() { passes=$((passes + 1)); }
no() { fails=$((fails + 1)); echo "FAIL $*"; }

command -v groff > /dev/null || { echo "groff not found: install the Debian package groff-base"; exit 1; }
version=$(sed -n 's/^#define RS_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/rsocket/common.h")
[ -n "$version" ] || { echo "no RS_VERSION_STRING in $src/include/rsocket/common.h"; exit 1; }

# The page's text as written, with the roff escapes that sit inside option names undone:
# \- (minus), font changes (\fB, \f[B], \f(BI), \& and \: (zero-width), \(aq.
plain() {
  sed -E -e 's/\\-/-/g' -e 's/\\f(\[[^]]*\]|\([A-Za-z]{2}|[A-Za-z0-9])//g' -e 's/\\[&:%]//g' \
    -e "s/\\\\\\(aq/'/g" "$1"
}
# The long options in a text, one per line (a name after two dashes, not preceded by a name
# character, so that "a--b" or "---" do not count).
long_options() {
  grep -oE -- '(^|[^A-Za-z0-9_-])--[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[^-]*//' | sort -u
}
# Whether the text in file $1 mentions option $2 as a whole word.
mentions() {
  grep -qE -- "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|\$)" "$1"
}

progs=()
for p in "$bin"/*; do
  name=$(basename "$p")
  [ -x "$p" ] && [ -f "$p" ] || continue
  case "$name" in example-*) continue ;; esac
  progs+=("$name")
done
[ ${#progs[@]} -ge 5 ] && ok || no "expected at least 5 programs in $bin, found: ${progs[*]}"

for prog in "${progs[@]}"; do
  page=$src/docs/$prog.1
  if [ ! -f "$page" ]; then
    no "$prog: no manual page docs/$prog.1"
    continue
  fi
  # Renders without warnings (groff -ww: all of them).
  warnings=$(groff -man -ww -z "$page" 2>&1 || echo "groff exit status $?")
  check "$prog.1 renders without warnings" "" "$warnings"
  if command -v man > /dev/null; then
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 > /dev/null || true)
    check "$prog.1 man --warnings" "" "$warnings"
  fi
  plain "$page" > "$work/$prog.man"
  # .TH PROG 1 DATE "rsocket-c VERSION" and the usual sections.
  th=$(grep -m1 '^\.TH ' "$page" || true)
  [[ "$th" == *"\"rsocket-c $version\""* ]] && ok || no "$prog.1: .TH does not name rsocket-c $version: $th"
  check "$prog.1 NAME" "$prog" "$(awk '/^\.SH NAME/{getline; print $1; exit}' "$work/$prog.man")"
  for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    grep -q "^\.SH \"\?$section\"\?\$" "$page" && ok || no "$prog.1: no $section section"
  done
  grep -q '^\.SH .*OPTIONS' "$page" && ok || no "$prog.1: no OPTIONS section"
  # SEE ALSO names pages that exist (ours) or are well known.
  for ref in $(awk '/^\.SH "?SEE ALSO/{on=1; next} /^\.SH/{on=0} on && /^\.BR/{print $2}' "$page"); do
    [ -f "$src/docs/$ref.1" ] && ok || no "$prog.1: SEE ALSO $ref, but there is no docs/$ref.1"
  done

  # --help: exit 0 on stdout, every long option in the page.
  set +e
  "$bin/$prog" --help > "$work/$prog.help" 2> "$work/$prog.help.err"; rc=$?
  set -e
  check "$prog --help exit" 0 "$rc"
  [ -s "$work/$prog.help" ] && ok || no "$prog --help printed nothing on stdout"
  long_options < "$work/$prog.help" > "$work/$prog.help.opts"
  [ -s "$work/$prog.help.opts" ] && ok || no "$prog --help: no long option found"
  while read -r opt; do
    mentions "$work/$prog.man" "$opt" && ok || no "$prog: $opt is in --help but not in docs/$prog.1"
  done < "$work/$prog.help.opts"
  # Every long option in an option tag (the line after .TP or .IP) is one --help knows.
  awk '/^\.(TP|IP)/{getline; print}' "$page" | plain /dev/stdin | long_options > "$work/$prog.tags"
  while read -r opt; do
    mentions "$work/$prog.help" "$opt" && ok || no "$prog: docs/$prog.1 documents $opt, which --help does not list"
  done < "$work/$prog.tags"

  # --version (and -v when --help offers it): one line with the version, exit 0.
  for flag in --version -v; do
    [ "$flag" = -v ] && ! grep -qE -- '(^|[^A-Za-z0-9-])-v, --version' "$work/$prog.help" && continue
    set +e
    out=$("$bin/$prog" "$flag" 2>&1); rc=$?
    set -e
    check "$prog $flag exit" 0 "$rc"
    [[ "$out" == *"$version"* ]] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && ok \
      || no "$prog $flag: want one line with $version, got: $out"
  done
done

finish test_manpages
