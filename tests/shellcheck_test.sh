#!/usr/bin/env bash
# Runs shellcheck (Debian's package, installed by scripts/setup.sh) over every shell script of the
# repository: tests/, scripts/, bench/ and .ci/ (files ending in .sh, and files whose first line
# runs bash or sh). Every severity counts (-S info). On top of the defaults it asks for a default
# branch in every `case` (a value nobody expected then fails loudly), no nullary `[ "$x" ]`
# tests and no `which`. Excluded: SC1090/SC1091 (shellcheck cannot follow the sourced env files
# and helper libraries, whose paths are computed). A finding is fixed, or disabled on its line
# with a comment saying why.
#
# Usage: tests/shellcheck_test.sh [FILE...]   (default: every script of the repository)
set -euo pipefail
SRC="${RESPAWN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SHELLCHECK_OPTIONS=(-S info --exclude=SC1090 --exclude=SC1091 --enable=add-default-case
  --enable=avoid-nullary-conditions --enable=deprecate-which)

if ! command -v shellcheck >/dev/null; then
  echo "shellcheck is missing: scripts/setup.sh installs it (Debian package shellcheck)" >&2
  exit 1
fi

files=("$@")
if [ "${#files[@]}" -eq 0 ]; then
  cd "$SRC"
  while IFS= read -r -d '' f; do
    case "$f" in
      *.sh) files+=("$f") ;;
      *) if head -n 1 "$f" | grep -Eq '^#!.*\b(ba)?sh\b'; then files+=("$f"); fi ;;
    esac
  done < <(find tests scripts bench .ci -type f ! -name '*.*' -print0 -o -type f -name '*.sh' -print0 |
    sort -z)
fi
# The suites themselves are among them: fewer than that means the search is broken.
if [ "${#files[@]}" -lt 10 ]; then
  echo "found only ${#files[@]} shell scripts under $SRC: ${files[*]}" >&2
  exit 1
fi
echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p') ${SHELLCHECK_OPTIONS[*]}" \
  "over ${#files[@]} files"
if ! shellcheck "${SHELLCHECK_OPTIONS[@]}" "${files[@]}"; then
  echo "FAIL: shellcheck findings above (fix them, or disable one on its line with a reason)"
  exit 1
fi
echo "clean: ${files[*]}"
