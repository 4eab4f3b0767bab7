# Shared by scripts/jaeger.sh, prometheus.sh and stack.sh (sourced, not run): building a Go tool from the
# module proxy into the cache once, and stopping a process started in the background.

# go_build_cached NAME MODULE_PATH VERSION BINARY: builds `go build MODULE_PATH@VERSION` into BINARY unless
# it is already there. The build happens in a scratch module so nothing lands in the project.
go_build_cached() {
  local name="$1" module="$2" version="$3" binary="$4" scratch
  if [ -x "$binary" ]; then echo "$name: cached at $binary"; return 0; fi
  command -v go >/dev/null || { echo "$name: 'go' is not installed; install Go to build it" >&2; return 1; }
  mkdir -p "$(dirname "$binary")"
  scratch="$(mktemp -d)"
  echo "$name: building $version from the Go module proxy (several minutes the first time)..."
  # One chain: errexit does not apply inside an `if` condition.
  if ! (cd "$scratch" && go mod init "kotaemon-trace-$name-build" >/dev/null 2>&1 \
        && go get -tool "$module@$version" && go build -o "$binary.tmp" "$module"); then
    rm -rf "$scratch"
    echo "$name: the build failed (see above)" >&2
    return 1
  fi
  rm -rf "$scratch"
  mv "$binary.tmp" "$binary"
  echo "$name: built $binary"
}

# stop_pid NAME PID: SIGTERM, a 5 s grace (Jaeger's graceful stop can take longer than that), then SIGKILL.
stop_pid() {
  local name="$1" pid="$2"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  echo "$name: stopped"
}

# start_background NAME RUN_DIR READY_FN COMMAND...: runs COMMAND in the background with its output in
# RUN_DIR/NAME.log and its pid in RUN_DIR/NAME.pid, then waits up to 60 s for READY_FN to succeed. A
# process that exits meanwhile fails the start with its last log lines.
start_background() {
  local name="$1" dir="$2" ready_fn="$3" pid
  shift 3
  mkdir -p "$dir"
  nohup "$@" >"$dir/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/$name.pid"
  for _ in $(seq 1 120); do
    if "$ready_fn"; then echo "$name: ready (pid $pid, log $dir/$name.log)"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: exited during start; last log lines:" >&2; tail -20 "$dir/$name.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "$name: not ready after 60 s; see $dir/$name.log" >&2
  return 1
}
