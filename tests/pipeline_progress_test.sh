#!/usr/bin/env bash
# Progress of a running stage moves: on a terminal the live line shows each running stage's
# elapsed time (and DuckDB's percentage when it can estimate one), never a frozen "0%"; without
# a terminal a long stage prints "running for ..." lines (RESPAWN_PROGRESS_SECONDS apart), so
# logs of batch jobs show the run is alive.
#
# Usage: tests/pipeline_progress_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# A stage DuckDB cannot estimate (a cross join of ranges) running a few seconds.
write_pipeline() {
  mkdir -p p
  cat >p/pipeline.toml <<'TOML'
name = "progress"

[stages.slow]
sql = "SELECT count(*) AS n FROM range(0, ${n}) a, range(0, ${n}) b WHERE hash(a.range + b.range) % 7 = 1"
params = { n = 20000 }  # ~5 s on 2 idle cores (4e8 pairs); longer under load
TOML
}

test_terminal_line_shows_elapsed_time() {
  write_pipeline
  # Under a pseudo-terminal (Python's pty), as a user at a shell sees it.
  "$PY" - "$R" <<'EOF'
import os, pty, re, sys, time
started = time.monotonic()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "run", "--no-gc", "p/pipeline.toml"])
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
wall = time.monotonic() - started
assert os.waitstatus_to_exitcode(status) == 0, out
text = out.decode(errors="replace")
frames = [f.replace("\x1b[K", "").strip() for f in text.split("\r") if "running:" in f]
assert frames, "no live progress line:\n" + text
elapsed = [int(m.group(1)) for f in frames for m in [re.search(r"running: slow (\d+) s", f)] if m]
assert elapsed, "the live line does not show the elapsed time: %r" % frames[-3:]
# The line is redrawn 4 times a second: a stage that ran 2 s must have shown 1 s or more.
assert wall < 2 or max(elapsed) >= 1, "the elapsed time never moved in %.1f s: %r" % (
    wall, sorted(set(elapsed)))
assert sorted(elapsed) == elapsed, "the elapsed time went backwards"
assert not any(" 0%" in f for f in frames), "a frozen 0%%: %r" % frames[-3:]
assert re.search(r"stage slow: computed in", text), text
print("frames:", len(frames), "elapsed seen:", sorted(set(elapsed)), "wall %.1f s" % wall)
EOF
}

test_log_lines_without_a_terminal() {
  write_pipeline
  RESPAWN_PROGRESS_SECONDS=1 expect_exit 0 "$R" run --no-gc p/pipeline.toml
  cat out.txt
  grep -Eq '^stage slow: running for [0-9]+ s$' out.txt ||
    { echo "no 'running for' line for a stage that ran for seconds"; return 1; }
  # Nothing on stderr (the live line is for terminals only).
  [ ! -s err.txt ] || { echo "unexpected stderr:"; cat err.txt; return 1; }
  # The default (60 s) prints none for a short stage.
  expect_exit 0 "$R" run --no-gc --fresh p/pipeline.toml
  if grep -q 'running for' out.txt; then echo "a progress line before 60 s"; return 1; fi
}

run test_terminal_line_shows_elapsed_time
run test_log_lines_without_a_terminal
e2e_finish
